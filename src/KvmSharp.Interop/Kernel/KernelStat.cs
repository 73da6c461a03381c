// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>The fields of <c>struct stat</c> that the boundary reports.</summary>
public readonly record struct KernelStat(ulong Device, ulong Inode, uint Mode, ulong Links, long Size, long BlockSize, long Blocks);
