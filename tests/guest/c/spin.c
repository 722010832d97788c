/* Spins forever without a single host call (a hostile or buggy guest). */
int main(void) {
    volatile unsigned long long n = 0;
    for (;;) n++;
}
