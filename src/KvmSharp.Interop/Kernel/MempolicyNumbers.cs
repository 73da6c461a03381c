// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel;

/// <summary>
/// The NUMA syscalls' numbers for the architecture this process runs on (x86_64: syscall_64.tbl; arm64:
/// asm-generic/unistd.h); -1 elsewhere, which <see cref="LinuxKernel"/> answers with ENOSYS.
/// </summary>
internal static class MempolicyNumbers
{
    private static readonly bool X64 = RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
    private static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64;

    public static long Mbind { get; } = X64 ? Mempolicy.X86_64_NR_mbind : Arm64 ? Mempolicy.Arm64_NR_mbind : -1;

    public static long GetMempolicy { get; } = X64 ? Mempolicy.X86_64_NR_get_mempolicy : Arm64 ? Mempolicy.Arm64_NR_get_mempolicy : -1;

    public static long MovePages { get; } = X64 ? Mempolicy.X86_64_NR_move_pages : Arm64 ? Mempolicy.Arm64_NR_move_pages : -1;
}
