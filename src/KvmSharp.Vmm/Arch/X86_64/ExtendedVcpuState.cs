// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The x86 vCPU state a guest can change that is neither its general registers, its special registers nor an MSR,
/// and that KVM keeps from one KVM_RUN to the next: the x87/SSE/AVX registers with MXCSR (one XSAVE image,
/// KVM_GET/SET_XSAVE; the legacy KVM_GET/SET_FPU image on a kernel without KVM_CAP_XSAVE), XCR0 (KVM_GET/SET_XCRS),
/// DR0–DR3, DR6, DR7 (KVM_GET/SET_DEBUGREGS) and the queued exception / interrupt / NMI with the interrupt shadow
/// (KVM_GET/SET_VCPU_EVENTS). A call loads only the general registers, so without this a pooled micro-VM's next user
/// could read what the last one left in XMM0 or YMM15, run with its MXCSR or XCR0, or hit its breakpoints.
/// </summary>
internal sealed class ExtendedVcpuState
{
    /// <summary>Bytes of a legacy image (<c>struct kvm_fpu</c>) in <see cref="Fpu"/>, and a snapshot's marker for one.</summary>
    public const int LegacyFpuSize = 416;

    public ExtendedVcpuState(byte[] fpu, ulong? xcr0, kvm_debugregs debugRegs, kvm_vcpu_events events)
    {
        Fpu = fpu;
        Xcr0 = xcr0;
        DebugRegs = debugRegs;
        Events = events;
    }

    /// <summary>
    /// The register image: KVM_GET_XSAVE(2)'s standard-format XSAVE area (4096 bytes, or KVM_CAP_XSAVE2's size), or a
    /// <c>struct kvm_fpu</c> (<see cref="LegacyFpuSize"/> bytes) where the kernel has no XSAVE.
    /// </summary>
    public byte[] Fpu { get; }

    /// <summary>True when <see cref="Fpu"/> is an XSAVE area (not the legacy image).</summary>
    public bool IsXsave => Fpu.Length != LegacyFpuSize;

    /// <summary>XCR0; null on a kernel without KVM_CAP_XCRS.</summary>
    public ulong? Xcr0 { get; }

    public kvm_debugregs DebugRegs { get; }

    public kvm_vcpu_events Events { get; }

    /// <summary>Reads the state of <paramref name="vcpu"/>: four ioctls (three without KVM_CAP_XCRS).</summary>
    public static ExtendedVcpuState Capture(Vcpu vcpu)
    {
        KernelSupport support = SupportOf(vcpu.Vm.Kvm);
        byte[] fpu = support.Xsave ? vcpu.GetXsave() : LegacyBytes(vcpu.GetFpu());
        ulong? xcr0 = support.Xcrs ? vcpu.GetXcr0() : null;
        return new ExtendedVcpuState(fpu, xcr0, vcpu.GetDebugRegs(), vcpu.GetEvents());
    }

    /// <summary>
    /// Writes this state into <paramref name="vcpu"/>. XCR0 first: the XSAVE image may hold components only a wider
    /// XCR0 enables, and the events last, since KVM_SET_VCPU_EVENTS is the one call that can half-apply.
    /// </summary>
    /// <exception cref="Kernel.KvmException">The kernel refused a part (earlier parts stay written).</exception>
    /// <exception cref="MicroVmException">The state needs what this kernel lacks (an XSAVE image or XCR0 on a kernel
    /// without KVM_CAP_XSAVE / KVM_CAP_XCRS).</exception>
    public void Load(Vcpu vcpu)
    {
        KernelSupport support = SupportOf(vcpu.Vm.Kvm);
        if (Xcr0 is { } xcr0)
        {
            if (!support.Xcrs) throw new MicroVmException($"this kernel has no KVM_CAP_XCRS, so XCR0 0x{xcr0:X} cannot be loaded");
            vcpu.SetXcr0(xcr0);
        }
        if (IsXsave)
        {
            if (!support.Xsave) throw new MicroVmException($"this kernel has no KVM_CAP_XSAVE, so a {Fpu.Length}-byte XSAVE image cannot be loaded");
            vcpu.SetXsave(Fpu);
        }
        else
        {
            vcpu.SetFpu(MemoryMarshal.Read<kvm_fpu>(Fpu));
        }
        vcpu.SetDebugRegs(DebugRegs);
        vcpu.SetEvents(Events);
    }

    private static readonly ConditionalWeakTable<Kvm, KernelSupport> s_support = new();

    private static KernelSupport SupportOf(Kvm kvm) => s_support.GetValue(kvm, static k => new KernelSupport(
        k.CheckExtension(KvmCaps.KVM_CAP_XSAVE) != 0, k.CheckExtension(KvmCaps.KVM_CAP_XCRS) != 0));

    private sealed record KernelSupport(bool Xsave, bool Xcrs);

    private static byte[] LegacyBytes(kvm_fpu fpu)
    {
        var bytes = new byte[LegacyFpuSize];
        MemoryMarshal.Write(bytes, in fpu);
        return bytes;
    }
}
