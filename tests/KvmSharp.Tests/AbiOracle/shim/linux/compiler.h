/* SPDX-License-Identifier: MIT */
/*
 * Not an upstream file. The vendored headers are the raw uapi sources, which still say
 * #include <linux/compiler.h> and mark pointers __user; "make headers_install" strips both before
 * they reach /usr/include. This stand-in does the same job (and the host has no such header).
 */
#ifndef KVMSHARP_ORACLE_COMPILER_SHIM_H
#define KVMSHARP_ORACLE_COMPILER_SHIM_H
#define __user
#endif
