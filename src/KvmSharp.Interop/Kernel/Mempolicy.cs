// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>
/// NUMA memory policy uAPI, spelled as in include/uapi/linux/mempolicy.h (torvalds master): the modes and mode flags
/// of mbind(2)/set_mempolicy(2), the get_mempolicy(2) flags, the mbind(2) flags (also move_pages(2)'s). The syscall
/// numbers are those of the kernel's syscall tables, not of any libc header.
/// </summary>
public static class Mempolicy
{
    // enum { MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL, MPOL_PREFERRED_MANY,
    //        MPOL_WEIGHTED_INTERLEAVE, MPOL_MAX }
    public const int MPOL_DEFAULT = 0;
    public const int MPOL_PREFERRED = 1;
    public const int MPOL_BIND = 2;
    public const int MPOL_INTERLEAVE = 3;
    public const int MPOL_LOCAL = 4;
    public const int MPOL_PREFERRED_MANY = 5;
    public const int MPOL_WEIGHTED_INTERLEAVE = 6;
    public const int MPOL_MAX = 7;

    // Mode flags, or'ed into the mode argument of mbind(2) and set_mempolicy(2).
    public const int MPOL_F_STATIC_NODES = 1 << 15;
    public const int MPOL_F_RELATIVE_NODES = 1 << 14;
    public const int MPOL_F_NUMA_BALANCING = 1 << 13;
    public const int MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;

    // get_mempolicy(2) flags.
    public const ulong MPOL_F_NODE = 1 << 0;
    public const ulong MPOL_F_ADDR = 1 << 1;
    public const ulong MPOL_F_MEMS_ALLOWED = 1 << 2;

    // mbind(2) flags (MPOL_MF_MOVE / MPOL_MF_MOVE_ALL are move_pages(2)'s flags too).
    public const uint MPOL_MF_STRICT = 1 << 0;
    public const uint MPOL_MF_MOVE = 1 << 1;
    public const uint MPOL_MF_MOVE_ALL = 1 << 2;
    public const uint MPOL_MF_LAZY = 1 << 3;
    public const uint MPOL_MF_VALID = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL;

    // arch/x86/entry/syscalls/syscall_64.tbl: 237 mbind, 239 get_mempolicy, 279 move_pages.
    public const int X86_64_NR_mbind = 237;
    public const int X86_64_NR_get_mempolicy = 239;
    public const int X86_64_NR_move_pages = 279;

    // include/uapi/asm-generic/unistd.h (arm64): 235 mbind, 236 get_mempolicy, 239 move_pages.
    public const int Arm64_NR_mbind = 235;
    public const int Arm64_NR_get_mempolicy = 236;
    public const int Arm64_NR_move_pages = 239;

    /// <summary>The name of a policy mode (MPOL_BIND …), or its number when it has none.</summary>
    public static string ModeName(int mode) => mode switch
    {
        MPOL_DEFAULT => "MPOL_DEFAULT",
        MPOL_PREFERRED => "MPOL_PREFERRED",
        MPOL_BIND => "MPOL_BIND",
        MPOL_INTERLEAVE => "MPOL_INTERLEAVE",
        MPOL_LOCAL => "MPOL_LOCAL",
        MPOL_PREFERRED_MANY => "MPOL_PREFERRED_MANY",
        MPOL_WEIGHTED_INTERLEAVE => "MPOL_WEIGHTED_INTERLEAVE",
        _ => mode.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
