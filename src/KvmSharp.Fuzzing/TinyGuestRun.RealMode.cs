// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.IvtLdtGuestRun"/> without E bit 0: a real-mode program (<see cref="TinyGuestProgram.RealModeIvt"/>)
/// in host memory whose interrupts and exceptions go through an IVT of 256 entries, each stub OUTing its vector to
/// <see cref="TinyGuestProgram.PortBase"/> and returning with IRET. At every HLT but the last the run injects an
/// interrupt below 0x80 (KVM_INTERRUPT, or KVM_SET_VCPU_EVENTS with interrupt.injected; x86.c kvm_vcpu_ioctl_interrupt,
/// kvm_vcpu_ioctl_x86_set_vcpu_events; conformance kvm_interrupt_wakes_a_real_mode_hlt) or none. Compared: every exit
/// (the vectors recorded), the registers, CS and SS, the exception and interrupt queues, and a hash of the low 64 KiB
/// (IVT, skip slot, data, stack, the frames below SS:0xFFFF of a POP there). With reported divergences drawn, a
/// quarter of the runs get an IVT limit below 0x3FF (HostDeviations.KvmPvmRealModeIgnoresIvtLimit).
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong IvtSlotSize = 0x2_0000, IvtCodeGpa = 0x1_0000, IvtStubsGpa = (ulong)TinyGuestProgram.StubSegment << 4;
    private const int IvtData = 0x4000, IvtStackTop = 0x8000, IvtMaxRuns = 3 * TinyGuestProgram.MaxInstructions + 8;

    public static string RunRealModeIvt(IKernel kernel, KernelFd system, ulong seed, bool withReported)
    {
        var rng = new Random(unchecked((int)seed * 97 + 0x1F7));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        byte[] code = TinyGuestProgram.RealModeIvt(seed, IvtData);
        if (StartHostGuest(kernel, system, vm, IvtSlotSize, m =>
        {
            var ivt = m.GetSpan(0, 0x400);
            for (int v = 0; v < 256; v++) BinaryPrimitives.WriteUInt32LittleEndian(ivt[(v * 4)..], ((uint)TinyGuestProgram.StubSegment << 16) | (uint)(v * 8));
            TinyGuestProgram.IvtStubs().CopyTo(m.GetSpan(IvtStubsGpa, 0x840));
            code.CopyTo(m.GetSpan(IvtCodeGpa, code.Length));
        }, out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;

        var s = new kvm_sregs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rc < 0) return "get sregs " + Errno(rc);
        (s.cs.@base, s.cs.selector) = (IvtCodeGpa, (ushort)(IvtCodeGpa >> 4));
        (s.ds.@base, s.ds.selector, s.es.@base, s.es.selector, s.ss.@base, s.ss.selector) = (0, 0, 0, 0, 0, 0);
        // An IVT limit below 0x3FF only with reported divergences: kvm_pvm ignores it (HostDeviations.KvmPvmRealModeIgnoresIvtLimit).
        (s.idt.@base, s.idt.limit) = (0, withReported && rng.Next(4) == 0 ? (ushort)(rng.Next(0x100) * 4 + 3) : (ushort)0x3FF);
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        if (rc < 0) return "set sregs " + Errno(rc);
        var regs = SeededRegs(seed);
        (regs.rip, regs.rsp, regs.rflags) = (0, IvtStackTop, rng.Next(2) == 0 ? 0x202UL : 0x2UL);
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_REGS, Bytes(ref regs));
        if (rc < 0) return "set regs " + Errno(rc);

        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"idt limit 0x{s.idt.limit:X}: "));
        for (int n = 0; n < IvtMaxRuns; n++)
        {
            rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (n > 0) text.Append("; ");
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                break;
            }
            if (reason == (uint)KvmExitReason.KVM_EXIT_IO)
            {
                if (!AppendIoExit(run, text, n)) break;
                continue;
            }
            if (reason != (uint)KvmExitReason.KVM_EXIT_HLT)
            {
                text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                if (reason == (uint)KvmExitReason.KVM_EXIT_INTERNAL_ERROR)
                    text.Append(CultureInfo.InvariantCulture, $" suberror {BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_suberror, 4))}");
                break;
            }
            var at = new kvm_regs();
            kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref at));
            text.Append(CultureInfo.InvariantCulture, $"hlt ip 0x{at.rip:X}");
            if (at.rip == (ulong)code.Length)
            {
                text.Append(" (end)"); // the program's last HLT
                break;
            }
            InjectAtHlt(kernel, vcpu, rng, text);
        }
        AppendRegs(kernel, vcpu, text, out _);
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        text.Append(CultureInfo.InvariantCulture, $" cs={s.cs.selector:X}/{s.cs.@base:X} ss={s.ss.selector:X}");
        var e = new kvm_vcpu_events();
        long ev = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref e));
        text.Append(ev == 0
            ? string.Create(CultureInfo.InvariantCulture, $" | exception {e.exception_injected}/{e.exception_pending} nr {e.exception_nr} ec {e.exception_has_error_code}; interrupt {e.interrupt_injected} nr {e.interrupt_nr}")
            : " | events " + Errno(ev));
        text.Append(CultureInfo.InvariantCulture, $" | low 64K=0x{Fnv(memory.GetSpan(0, 0x1_0000)):X16}");
        return text.ToString();
    }

    /// <summary>At a HLT of the program: nothing, KVM_INTERRUPT, or KVM_SET_VCPU_EVENTS with an injected interrupt.</summary>
    private static void InjectAtHlt(IKernel kernel, KernelFd vcpu, Random rng, StringBuilder text)
    {
        uint vector = (uint)rng.Next(0x80);
        switch (rng.Next(4))
        {
            case 0:
                return;
            case 1:
            {
                var e = new kvm_vcpu_events();
                long get = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref e));
                (e.interrupt_injected, e.interrupt_nr, e.interrupt_soft, e.flags) = (1, (byte)vector, 0, 0);
                long set = get < 0 ? get : kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_VCPU_EVENTS, Bytes(ref e));
                text.Append(CultureInfo.InvariantCulture, $", events irq {vector} ").Append(Result(set));
                return;
            }
            default:
                text.Append(CultureInfo.InvariantCulture, $", irq {vector} ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_INTERRUPT, BitConverter.GetBytes(vector))));
                return;
        }
    }
}
