/*
 * <linux/if.h> — vnet SDK: struct ifreq, struct ifconf, IFNAMSIZ and the
 * IFF_* interface flags, which the C library's <net/if.h> already defines
 * with Linux's values and layout (as glibc and musl make the two headers
 * coexist): this header is that one, so `#include <linux/if.h>` builds.
 */
#ifndef _LINUX_IF_H
#define _LINUX_IF_H

#include <net/if.h>

#endif
