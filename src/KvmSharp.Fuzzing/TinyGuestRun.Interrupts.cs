// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.InterruptGuestRun"/>: the 64-bit tiny guest in host memory with an IDT of 256 gates whose handlers
/// halt (<see cref="WriteIdt"/>), events from a userspace irqchip queued between KVM_RUNs — KVM_INTERRUPT (vectors
/// below 256 and not), KVM_NMI, KVM_X86_SET_MCE after KVM_X86_SETUP_MCE with CR4.MCE set or clear — and a short program
/// of moves, arithmetic, OUT/IN, MMIO, PUSH/POP, HLT, CLI/STI, MOV SS, MOV CR8 and now and then UD2. Every exit is
/// compared: the reason, RIP (in a handler: the vector delivered), kvm_run.ready_for_interrupt_injection, if_flag, cr8
/// and apic_base, and the event queues with the interrupt shadow (KVM_GET_VCPU_EVENTS); after every injection
/// KVM_GET_VCPU_EVENTS (every byte); at the end the registers, the events, the MCE MSRs and the stack the deliveries
/// pushed.
/// <para>
/// What is not drawn, because this host (kvm_pvm) does it non-deterministically or differently from upstream and the
/// emulator cannot follow both (conformance HostDeviations):
/// <list type="bullet">
/// <item><c>KvmPvmLateIrqWindowExit</c>: with request_interrupt_window set, this host ends the run in
/// KVM_EXIT_IRQ_WINDOW_OPEN only at one of its own exits, after a varying number of instructions, where upstream and
/// the emulator exit at the first interruptible boundary. So a window is only ever requested in a guest that runs
/// with RFLAGS.IF clear (no STI, no IRET, no POPF, CR8 0) up to its end, <c>sti; nop; spin: jmp spin</c>: the
/// window can open only on the one-instruction loop, where every exit looks the same (RIP on the loop, nothing
/// changed). Exits before it (I/O, MMIO, HLT with IF clear) cannot be window exits on any kernel.</item>
/// <item>Two events injected at once (<c>KvmPvmPendingEventsWaitForNextRun</c>: this host delivers the second at the
/// guest's next HLT, upstream SVM drops it after the exit, the emulator at the next KVM_RUN): a KVM_INTERRUPT is not
/// made while an exception is queued, nor a KVM_X86_SET_MCE while an interrupt is (decided from the kernel's own
/// KVM_GET_VCPU_EVENTS, which is compared).</item>
/// </list>
/// Handlers never return (no IRET): an NMI unblocked inside a run is another host difference of that entry.
/// </para>
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong HandlersEnd = HandlersGpa + 256 * HandlerStride;

    public static string RunInterrupts(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 23 + 0x1E7));
        bool window = rng.Next(3) == 0;
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        byte[] code = InterruptProgram(rng, window);
        if (StartLongModeGuest(kernel, system, vm, code, m => WriteIdt(m, 256), out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        string? setup = EnterLongMode(kernel, vcpu, seed, IdtGpa, 256 * 16 - 1);
        if (setup is not null) return setup;

        var text = new StringBuilder(window ? "window: " : "");
        // The machine-check setup: banks (KVM_X86_SETUP_MCE, some refused: then 32 banks whose MCi_CTL is 0), CR4.MCE.
        if (rng.Next(3) != 0)
        {
            // Mostly a valid MCG_CAP (1–4 banks, MCG_CTL_P): uncorrected errors then reach the guest as #MC.
            ulong cap = rng.Next(4) == 0 ? X86StateOps.McgCapValue(rng) : (uint)rng.Next(1, 5) | (rng.Next(4) == 0 ? 0UL : 1UL << 8);
            text.Append(CultureInfo.InvariantCulture, $"setup_mce 0x{cap:X} ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_X86_SETUP_MCE, Bytes(ref cap)))).Append(", ");
        }
        var s = new kvm_sregs();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rng.Next(3) != 0) s.cr4 |= 1UL << 6;
        kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        var regs = new kvm_regs();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref regs));
        regs.rflags = !window && rng.Next(2) == 0 ? 0x202UL : 0x2UL;
        kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_REGS, Bytes(ref regs));
        // kvm_run->cr8 is loaded into CR8 at every KVM_RUN without an in-kernel APIC (a value above 15 is EINVAL).
        // Not in a window guest: the TPR does not gate the window on every vendor the same way.
        if (!window && rng.Next(4) == 0) BinaryPrimitives.WriteUInt64LittleEndian(run.GetSpan(KvmRunLayout.cr8, 8), (ulong)(rng.Next(12) == 0 ? 16 : rng.Next(16)));
        text.Append(CultureInfo.InvariantCulture, $"cr4 0x{s.cr4:X} rflags 0x{regs.rflags:X}: ");

        bool windowOpened = false;
        int runs = rng.Next(1, 7);
        for (int n = 0; n < runs; n++)
        {
            text.Append(n == 0 ? "" : "; ");
            if (window && windowOpened)
            {
                // What a VMM does when the window opens: inject the interrupt it was waiting for, stop asking. Always a
                // vector below 256, or the guest would spin on its loop with interrupts enabled and nothing to exit for.
                uint v = (uint)rng.Next(256);
                text.Append(CultureInfo.InvariantCulture, $"irq {v} ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_INTERRUPT, BitConverter.GetBytes(v)))).Append(' ');
                run.GetSpan(KvmRunLayout.request_interrupt_window, 1)[0] = 0;
                window = false;
            }
            else
            {
                int injections = n == 0 ? rng.Next(0, 3) : rng.Next(3) == 0 ? 1 : 0;
                for (int i = 0; i < injections; i++) Inject(kernel, vcpu, rng, text);
                if (window) run.GetSpan(KvmRunLayout.request_interrupt_window, 1)[0] = 1;
            }
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason} ").Append(RunFields(run));
                break;
            }
            bool stop = false;
            switch ((KvmExitReason)reason)
            {
                case KvmExitReason.KVM_EXIT_IO:
                    stop = !AppendIoExit(run, text, n);
                    break;
                case KvmExitReason.KVM_EXIT_MMIO:
                    AppendMmioExit(run, text, n);
                    break;
                case KvmExitReason.KVM_EXIT_HLT:
                    text.Append("hlt");
                    break;
                case KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN:
                    text.Append("irq window open");
                    windowOpened = true;
                    break;
                case KvmExitReason.KVM_EXIT_SHUTDOWN:
                    // A triple fault KVM_X86_SET_MCE asked for ends the run before the guest runs; the state is kept.
                    text.Append("shutdown");
                    break;
                case KvmExitReason.KVM_EXIT_INTERNAL_ERROR:
                    text.Append(CultureInfo.InvariantCulture, $"internal error {BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_suberror, 4))}");
                    stop = true;
                    break;
                default:
                    text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                    stop = true;
                    break;
            }
            var r = new kvm_regs();
            kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref r));
            text.Append(CultureInfo.InvariantCulture, $" rip=0x{r.rip:X}");
            if (r.rip >= HandlersGpa && r.rip < HandlersEnd) text.Append(CultureInfo.InvariantCulture, $" (handler {(r.rip - HandlersGpa) / HandlerStride})");
            text.Append(' ').Append(RunFields(run));
            // The queues and the interrupt shadow after the exit (exception, interrupt, NMI, SIPI vector, flags).
            var ev = new kvm_vcpu_events();
            kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref ev));
            text.Append(" ev=").Append(Convert.ToHexString(Bytes(ref ev))[..48]);
            if (stop) break;
        }
        text.Append(" | ").Append(Registers(kernel, vcpu));
        var events = new kvm_vcpu_events();
        long evRc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref events));
        text.Append(" | events ").Append(evRc == 0 ? Convert.ToHexString(Bytes(ref events)) : Errno(evRc));
        text.Append(" | ").Append(MceMsrs(kernel, vcpu));
        text.Append(CultureInfo.InvariantCulture, $" | stack={Convert.ToHexString(memory.GetSpan(StackTop - 0x80, 0x80))}");
        return text.ToString();
    }

    /// <summary>After a KVM_RUN: post_kvm_run_save's ready_for_interrupt_injection, if_flag, cr8 and apic_base.</summary>
    internal static string RunFields(MappedRegion run) => string.Create(CultureInfo.InvariantCulture,
        $"ready={run.GetSpan(KvmRunLayout.ready_for_interrupt_injection, 1)[0]} if={run.GetSpan(KvmRunLayout.if_flag, 1)[0]} " +
        $"cr8={U64(run, KvmRunLayout.cr8)} apic_base=0x{U64(run, KvmRunLayout.apic_base):X}");

    /// <summary>
    /// One KVM_INTERRUPT, KVM_NMI or KVM_X86_SET_MCE, then KVM_GET_VCPU_EVENTS. The draw is made whatever the kernel's
    /// queue holds; an interrupt is then not made while an exception is queued, nor a machine check while an interrupt
    /// is (see the class summary).
    /// </summary>
    private static void Inject(IKernel kernel, KernelFd vcpu, Random rng, StringBuilder text)
    {
        var before = new kvm_vcpu_events();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref before));
        int kind = rng.Next(10);
        if (kind < 5)
        {
            uint v = InterruptOps.Vector(rng);
            if (before.exception_injected != 0) text.Append(CultureInfo.InvariantCulture, $"(irq {v} skipped) ");
            else text.Append(CultureInfo.InvariantCulture, $"irq {v} ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_INTERRUPT, BitConverter.GetBytes(v)))).Append(' ');
        }
        else if (kind < 8)
        {
            text.Append("nmi ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_NMI, 0UL))).Append(' ');
        }
        else
        {
            var mce = InterruptOps.Mce(rng);
            if (rng.Next(2) == 0)
            {
                // An action-required error in bank 0, the usual way to a delivered #MC.
                mce.bank = 0;
                mce.status = (1UL << 63) | (1UL << 61) | (1UL << 60) | (1UL << 56) | (1UL << 55) | (uint)rng.Next(0x10000);
            }
            if (before.interrupt_injected != 0) text.Append(CultureInfo.InvariantCulture, $"(mce bank {mce.bank} skipped) ");
            else text.Append(CultureInfo.InvariantCulture, $"mce bank {mce.bank} status 0x{mce.status:X} mcg 0x{mce.mcg_status:X} ")
                .Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_X86_SET_MCE, Bytes(ref mce)))).Append(' ');
        }
        var events = new kvm_vcpu_events();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref events));
        text.Append("events ").Append(rc == 0 ? Convert.ToHexString(Bytes(ref events)) : Errno(rc)).Append(": ");
    }

    /// <summary>MCG_STATUS and banks 0–3 (STATUS, ADDR, MISC): KVM_GET_MSRS stops at the first bank MCG_CAP lacks.</summary>
    private static string MceMsrs(IKernel kernel, KernelFd vcpu)
    {
        const int Count = 13;
        var buffer = new byte[Marshal.SizeOf<kvm_msrs>() + Count * Marshal.SizeOf<kvm_msr_entry>()];
        MemoryMarshal.Write(buffer, new kvm_msrs { nmsrs = Count });
        var entries = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        entries[0].index = 0x17A;
        for (int i = 1; i < Count; i++) entries[i].index = 0x401 + (uint)(4 * ((i - 1) / 3) + (i - 1) % 3);
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_MSRS, buffer);
        var text = new StringBuilder("msrs ").Append(rc < 0 ? Errno(rc) : rc.ToString(CultureInfo.InvariantCulture));
        for (int i = 0; i < Math.Min(rc, Count); i++) text.Append(CultureInfo.InvariantCulture, $" {entries[i].index:X}={entries[i].data:X}");
        return text.ToString();
    }

    private static readonly AssemblerRegister64[] s_irq64 = [rax, rcx, rbx, rsi, rdi, r8, r9, r11];
    private static readonly AssemblerRegister32[] s_irq32 = [eax, ecx, ebx, esi, edi, r8d, r9d, r11d];

    /// <summary>
    /// 1–12 straight-line instructions, then <c>l: hlt; jmp l</c> — or, in a window guest (RFLAGS.IF clear throughout,
    /// no STI or MOV CR8 before its end), <c>sti; nop; spin: jmp spin</c>.
    /// </summary>
    private static byte[] InterruptProgram(Random rng, bool window)
    {
        var a = new Assembler(64);
        int count = rng.Next(1, 13);
        for (int i = 0; i < count; i++)
        {
            int r = rng.Next(s_irq64.Length), s = rng.Next(s_irq64.Length);
            int off = 8 * rng.Next(8);
            switch (rng.Next(100))
            {
                case < 12:
                    a.mov(s_irq64[r], (ulong)rng.NextInt64());
                    break;
                case < 22:
                    if (rng.Next(2) == 0) a.add(s_irq64[r], s_irq64[s]);
                    else a.inc(s_irq32[r]);
                    break;
                case < 30:
                    a.mov(__qword_ptr[r15 + off], s_irq64[r]);
                    break;
                case < 36:
                    a.mov(s_irq32[r], __dword_ptr[r14 + off]);
                    break;
                case < 46:
                    a.mov(edx, TinyGuestProgram.PortBase + rng.Next(16));
                    if (rng.Next(3) == 0) a.@in(al, dx);
                    else a.@out(dx, al);
                    break;
                case < 54:
                    if (rng.Next(2) == 0) a.push(s_irq64[r]);
                    else a.pop(s_irq64[r]);
                    break;
                case < 60:
                    a.nop();
                    break;
                case < 72:
                    a.hlt();
                    break;
                case < 78:
                    a.cli();
                    break;
                case < 86:
                    if (window) a.nop();
                    else a.sti();
                    break;
                case < 91:
                    // MOV SS blocks interrupts over the next instruction (the selector it already has).
                    a.mov(r10d, 0x10);
                    a.mov(ss, r10w);
                    break;
                case < 95 when !window:
                    // Lowering the TPR without an in-kernel APIC: upstream SVM's cr8_write_interception.
                    a.mov(r10d, rng.Next(16));
                    a.mov(cr8, r10);
                    break;
                case < 98:
                    a.nop();
                    break;
                default:
                    a.ud2();
                    break;
            }
        }
        if (window)
        {
            a.sti();
            a.nop();
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.jmp(spin);
        }
        else
        {
            var end = a.CreateLabel();
            a.Label(ref end);
            a.hlt();
            a.jmp(end);
        }
        return TinyGuestProgram.Encode(a, CodeGpa);
    }
}
