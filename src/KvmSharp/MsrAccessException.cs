// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// KVM_GET_MSRS / KVM_SET_MSRS succeeded as a syscall but processed fewer MSRs than asked: the kernel stops at the
/// first MSR it does not know or whose value it refuses, and reports no errno for it (<see cref="KvmException.ErrnoValue"/>
/// is 0). Thrown by <see cref="Vcpu.GetMsr"/> and <see cref="Vcpu.SetMsr"/>.
/// </summary>
public sealed class MsrAccessException : KvmException
{
    /// <summary>Creates the exception for <paramref name="index"/> (and, for a write, <paramref name="value"/>).</summary>
    public MsrAccessException(string operation, uint index, ulong? value, string request)
        : base(operation, 0, request,
            value is ulong v
                ? $"{operation}: the kernel refused {X86Msr.NameOf(index)} = 0x{v:X} (0 of 1 MSRs written): {request}"
                : $"{operation}: the kernel cannot read {X86Msr.NameOf(index)} (0 of 1 MSRs read): {request}")
    {
        Index = index;
        Value = value;
    }

    /// <summary>The MSR number the kernel stopped at.</summary>
    public uint Index { get; }

    /// <summary>The value that was refused (null for a read).</summary>
    public ulong? Value { get; }
}
