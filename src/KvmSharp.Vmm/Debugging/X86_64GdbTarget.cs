// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// An x86-64 vCPU for <see cref="GdbStub"/>: registers through KVM_GET/SET_REGS and KVM_GET_SREGS, the x87 and SSE
/// registers through the legacy area of KVM_GET/SET_XSAVE (KVM_GET/SET_FPU on a kernel without KVM_CAP_XSAVE), in
/// gdb's layout (<see cref="X86_64GdbRegisters"/>); steps with KVM_GUESTDBG_SINGLESTEP, breakpoints in DR0–DR3 with
/// KVM_GUESTDBG_USE_HW_BP (x86.c kvm_vcpu_check_code_breakpoint).
/// XSAVE rather than KVM_GET_FPU: KVM_GET_FPU does not copy MXCSR out (it reads 0) and KVM_SET_FPU ignores it, and
/// KVM_SET_FPU leaves the XSAVE header alone, so on a vCPU whose XSTATE_BV lacks FP or SSE the guest would go on
/// seeing the init state (<see cref="Vcpu.GetFpu"/>, <see cref="Vcpu.SetFpu"/>). A write through KVM_SET_XSAVE sets
/// XSTATE_BV's FP and SSE bits, so the image's values are the ones the guest runs with.
/// No watchpoints (<see cref="GdbTarget.WatchpointRegisters"/> 0): this host's kernel raises no data breakpoints for
/// KVM_GUESTDBG_USE_HW_BP (kvm_pvm, and the emulator modelled on it: X86Emulator.GuestDebug.cs "Not modelled: data
/// and I/O breakpoints (this host raises none)"), so Z2–Z4 are answered as unsupported and gdb watches in software.
/// </summary>
internal sealed class X86_64GdbTarget(Vcpu vcpu) : GdbTarget
{
    private const byte Hlt = 0xF4;

    /// <summary>Offset of XSTATE_BV in an XSAVE image.</summary>
    private const int XstateBvOffset = XsaveArea.HeaderOffset;

    private readonly bool _xsave = vcpu.Vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE) != 0;

    public override string TargetXml => X86_64GdbRegisters.TargetXml;

    public override int PcRegister => X86_64GdbRegisters.Rip;

    public override int Count => X86_64GdbRegisters.Count;

    public override ulong Pc
    {
        get => vcpu.GetRegs().rip;
        set
        {
            kvm_regs regs = vcpu.GetRegs();
            regs.rip = value;
            vcpu.SetRegs(regs);
        }
    }

    public override int Size(int n) => X86_64GdbRegisters.Size(n);

    public override int Offset(int n) => X86_64GdbRegisters.Offset(n);

    public override byte[] ReadAll() => X86_64GdbRegisters.Read(vcpu.GetRegs(), vcpu.GetSregs(), ReadFpu(out _));

    public override bool WriteAll(ReadOnlySpan<byte> packet)
    {
        kvm_regs regs = vcpu.GetRegs();
        byte[] fx = ReadFpu(out byte[]? image);
        if (!X86_64GdbRegisters.WriteAll(ref regs, fx, packet, out bool withFloat)) return false;
        if (withFloat && !WriteFpu(fx, image)) return false;
        vcpu.SetRegs(regs);
        return true;
    }

    public override bool Write(int n, ReadOnlySpan<byte> value)
    {
        kvm_regs regs = vcpu.GetRegs();
        if (n >= X86_64GdbRegisters.St0)
        {
            byte[] fx = ReadFpu(out byte[]? image);
            return X86_64GdbRegisters.Write(ref regs, fx, n, value) && WriteFpu(fx, image);
        }
        if (!X86_64GdbRegisters.Write(ref regs, [], n, value)) return false;
        vcpu.SetRegs(regs);
        return true;
    }

    /// <summary>
    /// The vCPU's fxsave area (512 bytes): the first 512 bytes of its XSAVE image (returned in <paramref name="image"/>
    /// to write back), or KVM_GET_FPU's fields laid out as fxsave lays them (<paramref name="image"/> null).
    /// </summary>
    private byte[] ReadFpu(out byte[]? image)
    {
        var fx = new byte[X86_64GdbRegisters.FxsaveSize];
        if (_xsave)
        {
            image = vcpu.GetXsave();
            image.AsSpan(0, fx.Length).CopyTo(fx);
            return fx;
        }
        image = null;
        kvm_fpu fpu = vcpu.GetFpu();
        ReadOnlySpan<byte> raw = MemoryMarshal.AsBytes(new ReadOnlySpan<kvm_fpu>(in fpu));
        // struct kvm_fpu: fpr[128], then fcw … last_dp in fxsave's own order (24 bytes), xmm[256], mxcsr.
        raw[128..152].CopyTo(fx);
        raw[408..412].CopyTo(fx.AsSpan(24));
        raw[..128].CopyTo(fx.AsSpan(32));
        raw[152..408].CopyTo(fx.AsSpan(160));
        return fx;
    }

    /// <summary>Writes <paramref name="fx"/> back the way <see cref="ReadFpu"/> read it; false when the kernel refused it.</summary>
    private bool WriteFpu(ReadOnlySpan<byte> fx, byte[]? image)
    {
        try
        {
            if (image is not null)
            {
                fx.CopyTo(image);
                // XSTATE_BV: FP and SSE present, so KVM_SET_XSAVE loads them (components whose bit is clear go to their
                // init state: Intel SDM 1 §13.8.1 "Standard Form of XRSTOR").
                ulong bv = BitConverter.ToUInt64(image, XstateBvOffset) | XsaveArea.FeatureFp | XsaveArea.FeatureSse;
                BitConverter.TryWriteBytes(image.AsSpan(XstateBvOffset), bv);
                vcpu.SetXsave(image);
                return true;
            }
            kvm_fpu fpu = default;
            Span<byte> raw = MemoryMarshal.AsBytes(new Span<kvm_fpu>(ref fpu));
            fx[..24].CopyTo(raw[128..]);
            fx.Slice(24, 4).CopyTo(raw[408..]);
            fx.Slice(32, 128).CopyTo(raw);
            fx.Slice(160, 256).CopyTo(raw[152..]);
            vcpu.SetFpu(fpu);
            return true;
        }
        catch (KvmException)
        {
            return false; // e.g. MXCSR with a reserved bit set: EINVAL from KVM_SET_XSAVE
        }
    }

    public override void Step(IReadOnlyList<GdbWatchpoint> watchpoints) => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);

    public override void Arm(IReadOnlyList<ulong> breakpoints, IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        if (breakpoints.Count == 0)
        {
            Disable();
            return;
        }
        Span<ulong> regs = stackalloc ulong[Vcpu.GuestDebugRegisterCount];
        for (int i = 0; i < breakpoints.Count; i++) regs[i] = breakpoints[i];
        regs[7] = X86_64GdbRegisters.Dr7ForExecuteBreakpoints(breakpoints.Count);
        vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
    }

    public override void Disable() => vcpu.DisableGuestDebug();

    public override bool IsStepExit(VcpuExit exit) => exit.IsSingleStep;

    public override bool EndsCallWhenStepped(GuestMemory memory, ulong pc)
    {
        if (!memory.Contains(pc, 1) || !memory.IsShared(pc, 1)) return false;
        return memory.Read<byte>(pc) == Hlt;
    }

    // This host (and the emulator like it) advances RIP past an OUT before the exit and loses its step exit; upstream
    // KVM and an IN leave RIP on the instruction and step on the KVM_RUN that completes it (x86.c kvm_fast_pio).
    public override bool StepCompletedAt(VcpuExit exit, ulong stepFrom) =>
        exit.Reason == KvmExitReason.KVM_EXIT_IO && vcpu.GetRegs().rip != stepFrom;
}
