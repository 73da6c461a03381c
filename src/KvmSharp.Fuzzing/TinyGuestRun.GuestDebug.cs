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
/// <see cref="OpKind.GuestDebugRun"/>: the 64-bit tiny guest's layout in host memory plus an IDT whose 32 gates lead to
/// handlers that halt (<c>h: hlt; jmp h</c>), and a straight-line program of moves, arithmetic, data and MMIO loads
/// and stores, OUT/IN, PUSH/POP, reads of the guest's DR6/DR7, HLT and now and then a UD2 (#UD to its handler);
/// after the program <c>l: hlt; jmp l</c>, so a run past a HLT stays in known code. No INT3
/// (HostDeviations.KvmPvmSoftwareBreakpointNotIntercepted). 1–4 phases, each a KVM_SET_GUEST_DEBUG
/// (<see cref="GuestDebugOps"/>: breakpoints on the program's instructions, inside them, on the handlers, on its data)
/// and 0–24 KVM_RUNs, every exit shown (KVM_EXIT_DEBUG: exception, pc, dr6, dr7; I/O: port, size, direction,
/// data; MMIO) with RIP after it, the registers after each phase; then debugging off, a run to the next HLT, and
/// KVM_GET_REGS, KVM_GET_VCPU_EVENTS and KVM_GET_DEBUGREGS (every byte) and hashes of the data page and stack.
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong IdtGpa = 0x5000, HandlersGpa = 0x6000, HandlerStride = 0x10;

    public static string RunGuestDebug(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 19 + 0xDB));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        byte[] code = DebugProgram(rng);
        if (StartLongModeGuest(kernel, system, vm, code, m => WriteIdt(m), out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        string? setup = EnterLongMode(kernel, vcpu, seed, IdtGpa, 32 * 16 - 1);
        if (setup is not null) return setup;

        // Where breakpoints go: every instruction, the handlers of #DB, #BP and #UD, the data the program touches.
        var addresses = Instructions(code);
        addresses.AddRange([HandlersGpa + 1 * HandlerStride, HandlersGpa + 3 * HandlerStride, HandlersGpa + 6 * HandlerStride, DataGpa, DataGpa + 8, StackTop - 8]);

        var text = new StringBuilder();
        int phases = rng.Next(1, 5);
        bool stopped = false;
        Span<ulong> regs = stackalloc ulong[8];
        for (int p = 0; p < phases && !stopped; p++)
        {
            uint control = GuestDebugOps.Control(rng);
            GuestDebugOps.DebugRegs(rng, regs, addresses, withGd: false);
            var dbg = GuestDebugOps.Struct(control, regs);
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, Bytes(ref dbg));
            text.Append(CultureInfo.InvariantCulture, $"[set 0x{control:X} dr7=0x{regs[7]:X} {Result(rc)}:");
            int runs = rng.Next(4) == 0 ? rng.Next(0, 3) : rng.Next(1, 25);
            for (int n = 0; n < runs && !stopped; n++)
            {
                text.Append(n == 0 ? " " : "; ");
                stopped = RunOnce(kernel, vcpu, run, text, n, stopAtHlt: false);
                if (!stopped && SteppedOverHlt(run, memory))
                {
                    // HostDeviations.KvmPvmHaltAfterSteppedHlt: the next KVM_RUN here ends in a KVM_EXIT_HLT of the
                    // stepped HLT, after at most one more instruction; nothing more is run.
                    text.Append("; stepped over hlt");
                    stopped = true;
                }
            }
            text.Append("] ").Append(Registers(kernel, vcpu)).Append(' ');
        }
        var off = new kvm_guest_debug();
        text.Append("| off ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, Bytes(ref off)))).Append(':');
        for (int n = 0; n < MaxExits && !stopped; n++)
        {
            text.Append(n == 0 ? " " : "; ");
            if (RunOnce(kernel, vcpu, run, text, 100 + n, stopAtHlt: true)) break;
        }
        text.Append(" | ").Append(Registers(kernel, vcpu));
        var events = new kvm_vcpu_events();
        long evRc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref events));
        text.Append(" | events ").Append(evRc == 0 ? Convert.ToHexString(Bytes(ref events)) : Errno(evRc));
        var debugRegs = new kvm_debugregs();
        long drRc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_DEBUGREGS, Bytes(ref debugRegs));
        text.Append(" | debugregs ").Append(drRc == 0 ? Convert.ToHexString(Bytes(ref debugRegs)) : Errno(drRc));
        text.Append(CultureInfo.InvariantCulture, $" | data=0x{Fnv(memory.GetSpan(DataGpa, 0x1000)):X16} stack=0x{Fnv(memory.GetSpan(StackTop - 0x100, 0x110)):X16} frame={Convert.ToHexString(memory.GetSpan(StackTop - 0x28, 0x28))}");
        return text.ToString();
    }

    /// <summary>A single-step exit (exception 1, DR6.BS) right after a HLT (the byte before pc is 0xF4: it may also end another instruction).</summary>
    private static bool SteppedOverHlt(MappedRegion run, MappedRegion memory)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4)) != (uint)KvmExitReason.KVM_EXIT_DEBUG) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.debug_arch_exception, 4)) != 1) return false;
        if ((U64(run, KvmRunLayout.debug_arch_dr6) & (1UL << 14)) == 0) return false;
        ulong pc = U64(run, KvmRunLayout.debug_arch_pc);
        return pc == 0 || pc > LongSlotSize || memory.GetSpan(pc - 1, 1)[0] == 0xF4;
    }

    private static string Registers(IKernel kernel, KernelFd vcpu)
    {
        var r = new kvm_regs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref r));
        return rc == 0 ? FuzzText.Regs(r) : "get regs " + Errno(rc);
    }

    /// <summary>One KVM_RUN and its exit (answering IN and MMIO reads as <see cref="RunExits"/> does); true when the guest cannot go on.</summary>
    private static bool RunOnce(IKernel kernel, KernelFd vcpu, MappedRegion run, StringBuilder text, int n, bool stopAtHlt)
    {
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
        uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
        if (rc < 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
            return true;
        }
        bool stop = false;
        switch ((KvmExitReason)reason)
        {
            case KvmExitReason.KVM_EXIT_IO:
                if (!AppendIoExit(run, text, n)) return true;
                break;
            case KvmExitReason.KVM_EXIT_MMIO:
                AppendMmioExit(run, text, n);
                break;
            case KvmExitReason.KVM_EXIT_DEBUG:
                text.Append(CultureInfo.InvariantCulture,
                    $"debug exception={BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.debug_arch_exception, 4))} " +
                    $"pc=0x{U64(run, KvmRunLayout.debug_arch_pc):X} dr6=0x{U64(run, KvmRunLayout.debug_arch_dr6):X}");
                break;
            case KvmExitReason.KVM_EXIT_HLT:
                text.Append("hlt");
                stop = stopAtHlt;
                break;
            case KvmExitReason.KVM_EXIT_INTERNAL_ERROR:
                text.Append(CultureInfo.InvariantCulture, $"internal error {BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_suberror, 4))}");
                return true;
            default:
                text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                return true;
        }
        var r = new kvm_regs();
        text.Append(kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref r)) == 0 ? string.Create(CultureInfo.InvariantCulture, $" rip=0x{r.rip:X}") : " rip?");
        return stop;
    }

    /// <summary>
    /// <paramref name="vectors"/> present 64-bit interrupt gates (selector 8), vector v's handler at HandlersGpa + 16 v:
    /// <c>hlt; jmp short -3</c>. 256 of them fill 0x5000–0x5FFF and their handlers 0x6000–0x6FFF.
    /// </summary>
    private static void WriteIdt(MappedRegion memory, int vectors = 32)
    {
        var idt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(IdtGpa, vectors * 16));
        for (int v = 0; v < vectors; v++)
        {
            ulong handler = HandlersGpa + (ulong)v * HandlerStride;
            idt[2 * v] = (handler & 0xffff) | ((ulong)TinyGuestProgram.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47) | ((handler >> 16 & 0xffff) << 48);
            idt[2 * v + 1] = handler >> 32;
            var h = memory.GetSpan(handler, 3);
            h[0] = 0xF4; // hlt
            h[1] = 0xEB; // jmp short
            h[2] = 0xFD; // back to the hlt
        }
    }

    /// <summary>The linear addresses of the program's instructions (Iced's decoder: the same bytes the kernels run).</summary>
    private static List<ulong> Instructions(byte[] code)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code), CodeGpa);
        var list = new List<ulong>();
        while (decoder.IP < CodeGpa + (ulong)code.Length)
        {
            decoder.Decode(out var instruction);
            list.Add(instruction.IP);
        }
        return list;
    }

    private static readonly AssemblerRegister64[] s_dbg64 = [rax, rcx, rbx, rsi, rdi, r8, r9, r10, r11];
    private static readonly AssemblerRegister32[] s_dbg32 = [eax, ecx, ebx, esi, edi, r8d, r9d, r10d, r11d];
    private static readonly AssemblerRegister16[] s_dbg16 = [ax, cx, bx, si, di, r8w, r9w, r10w, r11w];
    private static readonly AssemblerRegister8[] s_dbg8 = [al, cl, bl, sil, dil, r8b, r9b, r10b, r11b];

    /// <summary>1–16 straight-line instructions (flags always defined), then <c>l: hlt; jmp l</c>.</summary>
    private static byte[] DebugProgram(Random rng)
    {
        var a = new Assembler(64);
        int count = rng.Next(1, 17);
        for (int i = 0; i < count; i++)
        {
            int r = rng.Next(s_dbg64.Length), s = rng.Next(s_dbg64.Length);
            int off = 8 * rng.Next(8);
            switch (rng.Next(100))
            {
                case < 12:
                    if (rng.Next(2) == 0) a.mov(s_dbg64[r], (ulong)rng.NextInt64());
                    else a.mov(s_dbg32[r], rng.Next());
                    break;
                case < 28:
                    switch (rng.Next(7))
                    {
                        case 0: a.add(s_dbg64[r], s_dbg64[s]); break;
                        case 1: a.sub(s_dbg32[r], rng.Next()); break;
                        case 2: a.adc(s_dbg64[r], s_dbg64[s]); break;
                        case 3: a.cmp(s_dbg32[r], s_dbg32[s]); break;
                        case 4: a.inc(s_dbg64[r]); break;
                        case 5: a.dec(s_dbg16[r]); break;
                        default: a.neg(s_dbg64[r]); break;
                    }
                    break;
                case < 38:
                    if (rng.Next(2) == 0) a.mov(s_dbg64[r], __qword_ptr[r15 + off]);
                    else a.movzx(s_dbg32[r], __byte_ptr[r15 + off + rng.Next(8)]);
                    break;
                case < 48:
                    if (rng.Next(2) == 0) a.mov(__qword_ptr[r15 + off], s_dbg64[r]);
                    else a.mov(__byte_ptr[r15 + off + rng.Next(8)], s_dbg8[r]);
                    break;
                case < 53:
                    a.mov(s_dbg32[r], __dword_ptr[r14 + off]);
                    break;
                case < 58:
                    a.mov(__dword_ptr[r14 + off], s_dbg32[r]);
                    break;
                case < 68:
                    a.mov(edx, TinyGuestProgram.PortBase + rng.Next(16));
                    switch (rng.Next(3))
                    {
                        case 0: a.@out(dx, al); break;
                        case 1: a.@out(dx, ax); break;
                        default: a.@out(dx, eax); break;
                    }
                    break;
                case < 74:
                    a.mov(edx, TinyGuestProgram.PortBase + rng.Next(16));
                    if (rng.Next(2) == 0) a.@in(al, dx); else a.@in(eax, dx);
                    break;
                case < 82:
                    if (rng.Next(2) == 0) a.push(s_dbg64[r]);
                    else a.pop(s_dbg64[r]);
                    break;
                case < 86:
                    a.nop();
                    break;
                case < 90:
                    if (rng.Next(2) == 0) a.mov(s_dbg64[r], dr6);
                    else a.mov(s_dbg64[r], dr7);
                    break;
                case < 96:
                    a.hlt();
                    break;
                default:
                    a.ud2();
                    break;
            }
        }
        var end = a.CreateLabel();
        a.Label(ref end);
        a.hlt();
        a.jmp(end);
        return TinyGuestProgram.Encode(a, CodeGpa);
    }
}
