// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.VcpuStateRoundTrip"/>: the SET drawn by <see cref="VcpuStateOps"/>, then the GET into a buffer
/// prefilled with a pattern, every byte of which is shown. The state stays: later calls on the vCPU (KVM_GET_SREGS's
/// interrupt_bitmap, KVM_RUN) see it.
/// <para>
/// Things about the guest FPU that are not the same on two vCPUs with the same history once a KVM_RUN has saved it
/// with XSAVES (kvm_put_guest_fpu), and are shown in a form both must agree on (<see cref="XsaveLayout.ClearInitBits"/>
/// says why): an XSAVE image's XSTATE_BV bit of a component whose bytes are its init value is cleared; and KVM_GET_FPU's
/// XMM bytes read 0 while SSE is out of XSTATE_BV. kvm_arch_vcpu_ioctl_get_fpu copies the fpstate's fxsave area, whose
/// XMM bytes XSAVES leaves alone while SSE is init — unless it reports SSE in use anyway, when it writes the zeros:
/// after a KVM_SET_XSAVE of XMM0 0x5a and one of xstate_bv 0, 9516 of 10000 KVM_GET_FPUs after runs still showed 0x5a
/// and 484 showed 0 (a C probe, session 13).
/// </para>
/// <para>
/// A third: once a run has saved x87 in use (XSTATE_BV's FP bit set after it), the saved x87 bytes are either the ones
/// stored or the CPU's own form of them — FOP/FIP/FDP 0, FCW's reserved bits and the ST padding normalised
/// (<see cref="XsaveLayout.AsWrittenByCpu"/> has the probes) — until KVM_SET_FPU or a KVM_SET_XSAVE with FP writes
/// them again; KVM_GET_FPU and KVM_GET_XSAVE(2) show them in that form then. A fourth: XMM bytes KVM_SET_FPU wrote
/// after a run are live or not by that run's header (<see cref="_sseUncertain"/>). Everything else, and all of it
/// before any run, is compared exactly.
/// </para>
/// </summary>
public sealed partial class KernelSession
{
    /// <summary>vCPU handles whose XSAVE header a KVM_RUN may have written since the last KVM_SET_XSAVE that took.</summary>
    private readonly HashSet<int> _xsavedHeader = [];

    /// <summary>vCPU handles whose saved XMM bytes a KVM_RUN may have zeroed since KVM_SET_FPU or KVM_SET_XSAVE with SSE last wrote them.</summary>
    private readonly HashSet<int> _xsavedXmm = [];

    /// <summary>vCPU handles run since XSTATE_BV was last looked at for <see cref="_x87SavedByRun"/>.</summary>
    private readonly HashSet<int> _x87RunUnseen = [];

    /// <summary>vCPU handles whose saved x87 bytes a run wrote (FP in XSTATE_BV after it) since a SET last wrote them.</summary>
    private readonly HashSet<int> _x87SavedByRun = [];

    /// <summary>
    /// vCPU handles given XMM bytes by KVM_SET_FPU after a run and before the next KVM_SET_XSAVE: a run's XSAVES may
    /// have left SSE in XSTATE_BV with init data (<see cref="XsaveLayout.ClearInitBits"/>), and KVM_SET_FPU writes the
    /// fxsave area without touching the header, so on such a kernel the new XMM bytes are live (KVM_GET_XSAVE shows
    /// them, the next run loads them) and on the other they are not (XSTATE_BV without SSE: KVM_GET_XSAVE shows init,
    /// the next run's XRSTORS loads init). Found by the fuzzer (session 15: seed 3 call 2252, seed 1 call 8611 — Linux
    /// showed SSE with the KVM_SET_FPU bytes, the emulator init). Until a KVM_SET_XSAVE rewrites the header, SSE and
    /// the XMM bytes are not compared (<see cref="XsaveLayout.ForgetSse"/>; KVM_GET_FPU's XMM after a run).
    /// </summary>
    private readonly HashSet<int> _sseUncertain = [];

    private XsaveLayout? _xsaveLayout;

    /// <summary>The kernel's XSAVE layout, read on first use (only sessions with XSAVE calls ask the kernel).</summary>
    private XsaveLayout Layout => _xsaveLayout ??= XsaveLayout.Read(_kernel);

    /// <summary>Called before every KVM_RUN on a session vCPU: kvm_load_guest_fpu / kvm_put_guest_fpu run even around an immediate exit.</summary>
    private void MarkRun(int vcpu)
    {
        _xsavedHeader.Add(vcpu);
        _xsavedXmm.Add(vcpu);
        NoteX87Save(vcpu);
        _x87RunUnseen.Add(vcpu);
    }

    /// <summary>
    /// After a run (looked at before the next run or FPU / XSAVE call, the session calls that change XSTATE_BV): FP in
    /// XSTATE_BV means kvm_put_guest_fpu's XSAVES found x87 in use and wrote its area (<see cref="XsaveLayout.AsWrittenByCpu"/>).
    /// Returns the KVM_GET_XSAVE image it read, if it read one.
    /// </summary>
    private byte[]? NoteX87Save(int vcpu)
    {
        if (!_x87RunUnseen.Remove(vcpu) || _x87SavedByRun.Contains(vcpu)) return null;
        var image = new byte[Marshal.SizeOf<kvm_xsave>()];
        if (_kernel.Ioctl(Fd(vcpu), KvmIoctls.KVM_GET_XSAVE, image) != 0) return null;
        if ((BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(XsaveLayout.HeaderOffset)) & XsaveLayout.Fp) != 0) _x87SavedByRun.Add(vcpu);
        return image;
    }

    private string VcpuStateRoundTrip(FuzzOp op)
    {
        var fd = Fd(op.Target);
        int kind = op.E & 7;
        bool xsave = kind >= 5;
        var (set, get, size) = VcpuStateOps.Ioctls(kind);
        var text = new StringBuilder();
        // Only the FPU and XSAVE pairs show x87 bytes or change XSTATE_BV.
        byte[]? image = kind is 0 or >= 5 ? NoteX87Save(op.Target) : null;
        if ((op.E & VcpuStateOps.CpuidFirst) != 0)
        {
            var table = CpuidBuffer(1, VcpuStateOps.CpuidTable(op.A));
            text.Append("cpuid ").Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_CPUID2, table))).Append(", ");
        }
        if ((op.E & VcpuStateOps.GetOnly) == 0)
        {
            var argument = VcpuStateOps.SetArgument(kind, op.A, xsave ? Layout : null);
            long setRc = _kernel.Ioctl(fd, set, argument);
            text.Append("set ").Append(Describe(setRc)).Append(", ");
            if (setRc == 0 && kind == 0)
            {
                if (_xsavedHeader.Contains(op.Target)) _sseUncertain.Add(op.Target);
                _xsavedXmm.Remove(op.Target);
                _x87SavedByRun.Remove(op.Target);
            }
            if (setRc == 0 && xsave)
            {
                // copy_uabi_to_xstate: XSTATE_BV becomes the given bits; the XMM bytes are written when SSE is among them, x87's with FP.
                _xsavedHeader.Remove(op.Target);
                _sseUncertain.Remove(op.Target);
                ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(argument.AsSpan(XsaveLayout.HeaderOffset));
                if ((bv & XsaveLayout.Sse) != 0) _xsavedXmm.Remove(op.Target);
                if ((bv & XsaveLayout.Fp) != 0) _x87SavedByRun.Remove(op.Target);
            }
        }
        var buffer = new byte[size];
        buffer.AsSpan().Fill(0xA5);
        long rc = _kernel.Ioctl(fd, get, buffer);
        text.Append("get ").Append(Describe(rc));
        if (rc != 0) return text.ToString();
        if (_x87SavedByRun.Contains(op.Target))
        {
            if (xsave) XsaveLayout.AsWrittenByCpu(buffer.AsSpan(0, XsaveLayout.X87FieldsSize), buffer.AsSpan(32, 128));
            if (kind == 0) XsaveLayout.AsWrittenByCpu(buffer.AsSpan((int)Marshal.OffsetOf<kvm_fpu>(nameof(kvm_fpu.fcw)), XsaveLayout.X87FieldsSize), buffer.AsSpan(0, 128));
        }
        if (xsave && _xsavedHeader.Contains(op.Target)) Layout.ClearInitBits(buffer);
        if (_sseUncertain.Contains(op.Target))
        {
            if (xsave) XsaveLayout.ForgetSse(buffer);
            if (kind == 0 && _xsavedXmm.Contains(op.Target)) buffer.AsSpan((int)Marshal.OffsetOf<kvm_fpu>(nameof(kvm_fpu.xmm)), 256).Clear();
        }
        if (kind == 0 && _xsavedXmm.Contains(op.Target) && !SseInXstateBv(fd, (op.E & VcpuStateOps.GetOnly) != 0 ? image : null))
            buffer.AsSpan((int)Marshal.OffsetOf<kvm_fpu>(nameof(kvm_fpu.xmm)), 256).Clear();
        return text.Append(' ').Append(Convert.ToHexString(buffer)).ToString();
    }

    /// <summary>
    /// Whether KVM_GET_XSAVE reports SSE in XSTATE_BV (true when it cannot be read: the XMM bytes are then shown as
    /// read); <paramref name="read"/> is an image read in this call with nothing set since, used instead of reading again.
    /// </summary>
    private bool SseInXstateBv(KvmSharp.Kernel.KernelFd fd, byte[]? read = null)
    {
        var image = read ?? new byte[Marshal.SizeOf<kvm_xsave>()];
        return (read is null && _kernel.Ioctl(fd, KvmIoctls.KVM_GET_XSAVE, image) != 0)
            || (BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(XsaveLayout.HeaderOffset)) & XsaveLayout.Sse) != 0;
    }
}
