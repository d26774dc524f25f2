/* The one C seam to libmd (Debian's libmd-dev), for libvirt's lease names:
 * the MD5 of a disk path. libmd is the message-digest library that libbsd
 * itself uses, so the run-time library is on every Debian host already; it
 * has no FIPS provider that could refuse MD5, as OpenSSL's EVP can. */
#ifndef VSC_CMD5_SHIM_H
#define VSC_CMD5_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <md5.h>

#endif
