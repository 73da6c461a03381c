// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_GET_FPU (x86): the legacy (fxsave) FPU state — ST0..ST7, FCW/FSW/FTW, last opcode/IP/DP, XMM0..XMM15. A new
    /// vCPU reads fcw 0x37f and zeros. The kernel does not copy MXCSR out: <see cref="kvm_fpu.mxcsr"/> always reads 0.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_fpu GetFpu() => GetState<kvm_fpu>(KvmIoctls.KVM_GET_FPU, "KVM_GET_FPU");

    /// <summary>
    /// KVM_SET_FPU (x86): replaces the legacy FPU state except MXCSR (the kernel ignores <see cref="kvm_fpu.mxcsr"/>;
    /// set it with <see cref="SetXsave"/>); the kernel checks no field. It does not touch the XSAVE header: on a vCPU
    /// whose xstate_bv lacks FP/SSE (a new one) the guest and <see cref="GetXsave"/> still see the init state.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetFpu(kvm_fpu fpu) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_FPU, KvmCall.Bytes(ref fpu)), "KVM_SET_FPU",
            $"vcpu={Id} fcw=0x{fpu.fcw:X} mxcsr=0x{fpu.mxcsr:X}");

    /// <summary>KVM_GET_XCRS (x86, KVM_CAP_XCRS): the extended control registers; the kernel reports XCR0 only.</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_xcrs GetXcrs() => GetState<kvm_xcrs>(KvmIoctls.KVM_GET_XCRS, "KVM_GET_XCRS");

    /// <summary>
    /// KVM_SET_XCRS (x86): the first entry naming XCR0 is applied, entries for other XCRs are skipped.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: nr_xcrs above 16, flags not 0, or an XCR0 the kernel refuses (bit 0
    /// clear, AVX without SSE, a feature the vCPU's CPUID.0xD does not offer — without KVM_SET_CPUID2 only 1 is
    /// valid).</exception>
    public void SetXcrs(kvm_xcrs xcrs) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_XCRS, KvmCall.Bytes(ref xcrs)), "KVM_SET_XCRS",
            $"vcpu={Id} nr_xcrs={xcrs.nr_xcrs} flags=0x{xcrs.flags:X}" + (xcrs.nr_xcrs > 0 ? $" xcrs[0]={xcrs.xcrs[0].xcr}:0x{xcrs.xcrs[0].value:X}" : ""));

    /// <summary>XCR0 (XFEATURE_ENABLED_MASK) through <see cref="GetXcrs"/>.</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public ulong GetXcr0()
    {
        var xcrs = GetXcrs();
        for (int i = 0; i < (int)Math.Min(xcrs.nr_xcrs, kvm_xcrs.KVM_MAX_XCRS); i++)
            if (xcrs.xcrs[i].xcr == 0) return xcrs.xcrs[i].value;
        return 0;
    }

    /// <summary>Sets XCR0 through <see cref="SetXcrs"/> (one entry).</summary>
    /// <exception cref="KvmException">EINVAL: the kernel refused the value.</exception>
    public void SetXcr0(ulong value)
    {
        var xcrs = new kvm_xcrs { nr_xcrs = 1 };
        xcrs.xcrs[0].value = value;
        SetXcrs(xcrs);
    }

    /// <summary>
    /// KVM_GET_VCPU_EVENTS (x86, KVM_CAP_VCPU_EVENTS): the queued exception, interrupt and NMI, the interrupt shadow
    /// and SMM state. flags tells which optional fields are valid (NMI_PENDING | SHADOW | SMM at least).
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_vcpu_events GetEvents() => GetState<kvm_vcpu_events>(KvmIoctls.KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");

    /// <summary>
    /// KVM_SET_VCPU_EVENTS (x86): replaces the event state; the optional parts apply only when their
    /// KVM_VCPUEVENT_VALID_* flag is set. A refused SMM or TRIPLE_FAULT part comes after the other parts were applied.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: an unknown flag, VALID_PAYLOAD / VALID_TRIPLE_FAULT without their
    /// capability enabled, an exception vector above 31 or 2 (NMI), or SMM state the kernel cannot hold.</exception>
    public void SetEvents(kvm_vcpu_events events) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_VCPU_EVENTS, KvmCall.Bytes(ref events)), "KVM_SET_VCPU_EVENTS",
            $"vcpu={Id} flags=0x{events.flags:X} exception={events.exception_nr}");

    /// <summary>KVM_GET_MP_STATE (KVM_CAP_MP_STATE): a KVM_MP_STATE_* value (a new vCPU without an irqchip: RUNNABLE).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public uint GetMpState() => GetState<kvm_mp_state>(KvmIoctls.KVM_GET_MP_STATE, "KVM_GET_MP_STATE").mp_state;

    /// <summary>KVM_SET_MP_STATE: sets the KVM_MP_STATE_* value.</summary>
    /// <exception cref="KvmException">EINVAL: without an in-kernel irqchip, anything but RUNNABLE.</exception>
    public void SetMpState(uint mpState)
    {
        var mp = new kvm_mp_state { mp_state = mpState };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_MP_STATE, KvmCall.Bytes(ref mp)), "KVM_SET_MP_STATE",
            $"vcpu={Id} mp_state={mpState}");
    }

    /// <summary>KVM_GET_DEBUGREGS (x86, KVM_CAP_DEBUGREGS): DR0..DR3, DR6, DR7 (a new vCPU: 0, 0xffff0ff0, 0x400).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_debugregs GetDebugRegs() => GetState<kvm_debugregs>(KvmIoctls.KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");

    /// <summary>KVM_SET_DEBUGREGS (x86): replaces DR0..DR3, DR6 and DR7.</summary>
    /// <exception cref="KvmException">EINVAL: flags not 0, or DR6/DR7 with any of bits 63:32 set.</exception>
    public void SetDebugRegs(kvm_debugregs debugRegs) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_DEBUGREGS, KvmCall.Bytes(ref debugRegs)), "KVM_SET_DEBUGREGS",
            $"vcpu={Id} dr6=0x{debugRegs.dr6:X} dr7=0x{debugRegs.dr7:X} flags=0x{debugRegs.flags:X}");

    /// <summary>A vCPU ioctl that fills a <typeparamref name="T"/> (the KVM_GET_* of a state struct).</summary>
    private T GetState<T>(uint request, string name) where T : unmanaged
    {
        var value = default(T);
        KvmCall.Check(Kernel.Ioctl(Handle, request, KvmCall.Bytes(ref value)), name, $"vcpu={Id}");
        return value;
    }
}
