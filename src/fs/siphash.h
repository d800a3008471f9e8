/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012):
 * a keyed 64-bit MAC for short inputs. Used to authenticate wire filehandles (fh.c).
 * Private to src/fs/.
 */
#ifndef PEERNFS_FS_SIPHASH_H
#define PEERNFS_FS_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit tag of data[0..len) under the 128-bit key; the paper's byte output is
 * this value in little-endian order. */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
