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
/// Watchpoints are DR0–DR3 too (shared with the breakpoints, as qemu's target/i386/kvm/kvm.c
/// kvm_arch_insert_hw_breakpoint has them): Z2 RW = 01, Z4 RW = 11, no read-only kind (Z3 unsupported), each naturally
/// aligned 1/2/4/8-byte piece of the range one register (LEN 00/01/11/10; gdb's nat/x86-dregs.c splits a range the
/// same way). A hit is a trap after the access: KVM_EXIT_DEBUG with exception 1 and its B bits in dr6 (svm.c
/// db_interception, vmx.c handle_exception_nmi). Offered only where the kernel raises them (<see cref="WatchpointRegisters"/>,
/// a probe): this host's kvm_pvm runs guest instructions through KVM's emulator, which checks no data breakpoint, so
/// there Z2–Z4 are answered as unsupported and gdb watches in software.
/// </summary>
internal sealed class X86_64GdbTarget(Vcpu vcpu) : GdbTarget
{
    // What DR0–DR3 hold after the last Arm or Step: null an execute breakpoint or nothing, else the watchpoint whose
    // piece at WatchAddress it is.
    private readonly GdbWatchpoint?[] _watchSlots = new GdbWatchpoint?[4];
    private readonly ulong[] _watchAddress = new ulong[4];

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

    public override void Step(IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        if (watchpoints.Count == 0)
        {
            Array.Clear(_watchSlots);
            vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
            return;
        }
        // A watched access by the stepped instruction: one exit, dr6 with BS and the B bits (vmx.c handle_exception_nmi).
        SetDebugRegisters(GuestDebugFlags.SingleStep, [], watchpoints);
    }

    public override void Arm(IReadOnlyList<ulong> breakpoints, IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        if (breakpoints.Count == 0 && watchpoints.Count == 0)
        {
            Disable();
            return;
        }
        SetDebugRegisters(GuestDebugFlags.None, breakpoints, watchpoints);
    }

    /// <summary>
    /// KVM_SET_GUEST_DEBUG with USE_HW_BP (and <paramref name="extra"/>): the execute breakpoints in DR0 on, then each
    /// watchpoint piece (<see cref="Pieces"/>) with L, RW and LEN (Intel SDM Vol. 3A 18.2.4).
    /// </summary>
    private void SetDebugRegisters(GuestDebugFlags extra, IReadOnlyList<ulong> breakpoints, IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        Span<ulong> regs = stackalloc ulong[Vcpu.GuestDebugRegisterCount];
        Array.Clear(_watchSlots);
        for (int i = 0; i < breakpoints.Count; i++) regs[i] = breakpoints[i];
        ulong dr7 = X86_64GdbRegisters.Dr7ForExecuteBreakpoints(breakpoints.Count);
        int n = breakpoints.Count;
        foreach (GdbWatchpoint w in watchpoints)
        {
            foreach (var (address, length) in Pieces(w))
            {
                if (n == 4) break; // the stub counted the registers; not reached
                regs[n] = address;
                _watchSlots[n] = w;
                _watchAddress[n] = address;
                ulong rw = w.Kind == GdbWatchKind.Write ? 1UL : 3UL;
                ulong len = length switch { 1 => 0, 2 => 1, 8 => 2, _ => 3 };
                dr7 |= (1UL << (2 * n)) | (rw << (16 + 4 * n)) | (len << (18 + 4 * n));
                n++;
            }
        }
        regs[7] = dr7;
        vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints | extra, regs);
    }

    /// <summary>
    /// The naturally aligned pieces of 8, 4, 2 or 1 bytes that cover <paramref name="watchpoint"/>'s range, largest
    /// first at each address (a DR watches LEN bytes at an address aligned to LEN: SDM Vol. 3A 18.2.5).
    /// </summary>
    internal static IEnumerable<(ulong Address, int Length)> Pieces(GdbWatchpoint watchpoint)
    {
        ulong address = watchpoint.Address;
        int left = watchpoint.Length;
        while (left > 0)
        {
            int size = 8;
            while (size > left || (address & (ulong)(size - 1)) != 0) size >>= 1;
            yield return (address, size);
            address += (ulong)size;
            left -= size;
        }
    }

    public override int WatchpointRegistersFor(GdbWatchpoint watchpoint) => Pieces(watchpoint).Count();

    public override bool WatchpointsShareBreakpointRegisters => true;

    public override bool SupportsWatchKind(GdbWatchKind kind) => kind != GdbWatchKind.Read;

    public override bool WatchpointStopsBeforeAccess => false;

    /// <summary>DR0–DR3 when the kernel raises data breakpoints for KVM_GUESTDBG_USE_HW_BP (<see cref="X86DataBreakpointProbe"/>), else 0.</summary>
    public override int WatchpointRegisters => X86DataBreakpointProbe.Raises(vcpu.Vm.Kvm) ? 4 : 0;

    /// <summary>
    /// KVM_EXIT_DEBUG, exception 1, with the B bit of a watchpoint's register in dr6. The address is the hit piece's;
    /// DR6 does not tell a read from a write, but an RW = 01 register only hits a write: <paramref name="write"/> is
    /// true when one of those hit, else false (an access watchpoint's hit is reported as <c>awatch</c>).
    /// </summary>
    public override bool IsWatchpointExit(VcpuExit exit, out ulong address, out bool write)
    {
        address = 0;
        write = false;
        if (exit.Reason != KvmExitReason.KVM_EXIT_DEBUG || exit.DebugException != 1) return false;
        bool hit = false;
        for (int n = 0; n < 4; n++)
        {
            if ((exit.DebugDr6 & (1UL << n)) == 0 || _watchSlots[n] is not GdbWatchpoint w) continue;
            bool isWrite = w.Kind == GdbWatchKind.Write;
            if (!hit || (isWrite && !write)) address = _watchAddress[n];
            hit = true;
            write |= isWrite;
        }
        return hit;
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
