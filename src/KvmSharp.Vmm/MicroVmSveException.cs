// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// <see cref="MicroVmOptions.Arm64SveVectorBits"/> cannot be given: not a vector length at all, an x86-64 micro-VM
/// (SVE is arm64's), a kernel without SVE (KVM_CAP_ARM_SVE 0), or a length this kernel's vCPUs do not offer (their
/// KVM_REG_ARM64_SVE_VLS before finalization). The message names what was asked and what is offered; nothing is left
/// behind (the half-made micro-VM is disposed).
/// </summary>
public sealed class MicroVmSveException : MicroVmException
{
    /// <summary>Creates the exception with the default message (no length known).</summary>
    public MicroVmSveException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> (no length known).</summary>
    public MicroVmSveException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and its cause <paramref name="inner"/>.</summary>
    public MicroVmSveException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Creates the exception for a request of <paramref name="requestedBits"/> bits, when the kernel offers
    /// <paramref name="offeredBits"/> (empty: no SVE, or not asked).
    /// </summary>
    public MicroVmSveException(int requestedBits, IReadOnlyList<int> offeredBits, string message)
        : base(message)
    {
        RequestedBits = requestedBits;
        OfferedBits = offeredBits;
    }

    /// <summary>The vector length asked for, in bits (<see cref="MicroVmOptions.Arm64SveVectorBits"/>); 0 when unknown.</summary>
    public int RequestedBits { get; }

    /// <summary>
    /// The vector lengths, in bits, this kernel's vCPUs offer (ascending); empty when the kernel has no SVE or was not
    /// asked (the request was refused before a VM existed, or the micro-VM is x86-64).
    /// </summary>
    public IReadOnlyList<int> OfferedBits { get; } = [];
}
