/*
 * setjmp.h for guests built with -pthread: setjmp/longjmp over Asyncify.
 *
 * wasi-libc's setjmp.h is an #error without the wasm exception-handling
 * proposal. With -pthread the module is transformed by Asyncify anyway, so vnet's
 * host can do what setjmp and longjmp mean: setjmp unwinds the wasm stack
 * into a snapshot the host keeps (keyed by the jmp_buf's address) and rewinds it
 * at once, returning 0; longjmp unwinds the current stack and rewinds the
 * snapshot, so setjmp returns again with the value. As in C, automatic
 * variables not declared volatile have indeterminate values after longjmp
 * (here: the values they had at setjmp); volatile ones keep their last value.
 * A longjmp to a jmp_buf setjmp did not fill on the same thread aborts.
 */
#ifndef __vnet_setjmp_h
#define __vnet_setjmp_h

#ifdef __cplusplus
extern "C" {
#endif

typedef struct __vnet_jmp_buf { unsigned __serial, __tid, __reserved[2]; } jmp_buf[1];
typedef jmp_buf sigjmp_buf;

int setjmp(jmp_buf) __attribute__((__returns_twice__));
_Noreturn void longjmp(jmp_buf, int);
int _setjmp(jmp_buf) __attribute__((__returns_twice__));
_Noreturn void _longjmp(jmp_buf, int);
int sigsetjmp(sigjmp_buf, int) __attribute__((__returns_twice__));
_Noreturn void siglongjmp(sigjmp_buf, int);

#define setjmp setjmp

#ifdef __cplusplus
}
#endif

#endif
