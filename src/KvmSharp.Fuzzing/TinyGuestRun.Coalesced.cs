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
/// <see cref="OpKind.CoalescedGuestRun"/>: a fresh VM gets a few KVM_REGISTER/UNREGISTER_COALESCED_MMIO calls
/// (<see cref="CoalescedOps.Zone"/>, registering twice, unregistering a zone, a part of it or a range around it), and
/// a 64-bit guest writes and reads MMIO at <see cref="MmioGpa"/> and ports from <see cref="CoalescedOps.Port"/>, some
/// in a loop long enough to fill the ring. A write wholly inside a zone is queued in the ring instead of exiting
/// (coalesced_mmio_write; a full ring, or an out-of-range last that userspace wrote, makes it exit as usual). The
/// exits, the ring's first/last and every queued entry are compared; at some exits the fuzzer consumes the ring
/// (first = last), as a VMM does.
/// </summary>
internal static partial class TinyGuestRun
{
    private static readonly int[] s_mmioWriteOffsets = [0, 1, 2, 4, 7, 8, 0xC, 0x10, 0x100, 0xFFC, 0x1000];

    // withReported (the op's E bit) changes nothing: this op steers around no reported divergence any more.
    public static string RunCoalesced(IKernel kernel, KernelFd system, ulong seed, bool withReported = false)
    {
        var rng = new Random(unchecked((int)seed * 19 + 0xC0A1));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        var text = new StringBuilder("zones");
        var zones = new List<(ulong Addr, uint Size, uint Pio)>();
        int calls = rng.Next(1, 7);
        for (int i = 0; i < calls; i++)
        {
            bool unregister = zones.Count > 0 && rng.Next(4) == 0;
            var zone = unregister ? CoalescedOps.Around(rng, zones[rng.Next(zones.Count)])
                : zones.Count > 0 && rng.Next(5) == 0 ? zones[rng.Next(zones.Count)] : CoalescedOps.Zone(rng);
            if (!unregister) zones.Add(zone);
            var arg = new kvm_coalesced_mmio_zone { addr = zone.Addr, size = zone.Size, pio = zone.Pio };
            long rc = kernel.Ioctl(vm, unregister ? KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO : KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO, Bytes(ref arg));
            text.Append(CultureInfo.InvariantCulture, $" {(unregister ? "-" : "+")}{(zone.Pio == 1 ? "pio" : zone.Pio == 0 ? "mmio" : $"pio={zone.Pio}")}@0x{zone.Addr:X}/0x{zone.Size:X} {Result(rc)}");
        }

        byte[] code = CoalescedProgram(rng);
        if (StartLongModeGuest(kernel, system, vm, code, null, out var started) is string startError) return text + ": " + startError;
        using var guest = started!;
        var (_, vcpu, run) = guest;
        if (EnterLongMode(kernel, vcpu, seed) is string setup) return text + ": " + setup;
        ulong ringAt = (ulong)KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86 * (ulong)Environment.SystemPageSize;
        if (run.Length < ringAt + (ulong)Environment.SystemPageSize) return text + ": no ring page in the vcpu mapping";
        var ring = run.GetSpan(ringAt, Environment.SystemPageSize);
        // Now and then userspace leaves a last the kernel must not trust (coalesced_mmio_write: insert >= MAX).
        if (rng.Next(8) == 0) BinaryPrimitives.WriteUInt32LittleEndian(ring[4..], (uint)KvmCoalescedMmio.MaxEntries(Environment.SystemPageSize) + (uint)rng.Next(3));
        text.Append(": ");
        RunCoalescedExits(kernel, vcpu, run, ringAt, rng.Next(3) == 0, text);
        AppendRegs(kernel, vcpu, text, out _);
        text.Append(" | ring ").Append(Ring(run.GetSpan(ringAt, Environment.SystemPageSize)));
        return text.ToString();
    }

    /// <summary>
    /// 2–12 steps: an MMIO write (1, 2, 4 or 8 bytes), an MMIO read, an OUT (1, 2 or 4 bytes) or a loop of writes; HLT.
    /// An 8-byte write at 0xFFC crosses into the next MMIO page: two fragments, two KVM_EXIT_MMIOs unless a zone takes
    /// one (x86.c emulator_read_write, complete_emulated_mmio; Conformance MmioFragmentRules). Found by this op; no
    /// longer steered around since the emulator splits it too (X86Emulator.MmioFragments.cs).
    /// </summary>
    private static byte[] CoalescedProgram(Random rng)
    {
        var a = new Assembler(64);
        int steps = rng.Next(2, 13);
        for (int i = 0; i < steps; i++)
        {
            int off = s_mmioWriteOffsets[rng.Next(s_mmioWriteOffsets.Length)];
            a.mov(rax, (ulong)rng.NextInt64());
            switch (rng.Next(8))
            {
                case 0: a.mov(__byte_ptr[r14 + off], al); break;
                case 1: a.mov(__word_ptr[r14 + off], ax); break;
                case 2: a.mov(__dword_ptr[r14 + off], eax); break;
                case 3: a.mov(__qword_ptr[r14 + off], rax); break;
                case 4: a.mov(ebx, __dword_ptr[r14 + off]); break;
                case 5:
                {
                    a.mov(edx, (uint)(CoalescedOps.Port + rng.Next(0, 9)));
                    switch (rng.Next(3))
                    {
                        case 0: a.@out(dx, al); break;
                        case 1: a.@out(dx, ax); break;
                        default: a.@out(dx, eax); break;
                    }
                    break;
                }
                default:
                {
                    // Enough writes to fill the ring (KVM_COALESCED_MMIO_MAX - 1 = 169 entries with 4 KiB pages).
                    var loop = a.CreateLabel();
                    a.mov(ecx, rng.Next(2) == 0 ? 8 : 200);
                    a.Label(ref loop);
                    a.mov(__dword_ptr[r14 + off], ecx);
                    a.dec(ecx);
                    a.jnz(loop);
                    break;
                }
            }
        }
        a.hlt();
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>KVM_RUN until HLT or another exit, MMIO and port exits shown; with <paramref name="consume"/> the ring emptied at every exit.</summary>
    private static void RunCoalescedExits(IKernel kernel, KernelFd vcpu, MappedRegion run, ulong ringAt, bool consume, StringBuilder text)
    {
        for (int n = 0; n < 300; n++)
        {
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (n > 0) text.Append("; ");
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                return;
            }
            if (reason == (uint)KvmExitReason.KVM_EXIT_MMIO) AppendMmioExit(run, text, n);
            else if (reason != (uint)KvmExitReason.KVM_EXIT_IO || !AppendIoExit(run, text, n))
            {
                AppendLastExit(run, reason, text);
                return;
            }
            var header = run.GetSpan(ringAt, 8);
            uint first = BinaryPrimitives.ReadUInt32LittleEndian(header), last = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            if (first != last) text.Append(CultureInfo.InvariantCulture, $" (ring {first}..{last})");
            if (consume && last < (uint)KvmCoalescedMmio.MaxEntries(Environment.SystemPageSize)) BinaryPrimitives.WriteUInt32LittleEndian(header, last);
        }
        text.Append("; exit limit");
        CompletePending(kernel, vcpu, run, text);
    }

    /// <summary>"hlt", or the exit reason (an internal error's suberror and data).</summary>
    private static void AppendLastExit(MappedRegion run, uint reason, StringBuilder text)
    {
        if (reason == (uint)KvmExitReason.KVM_EXIT_HLT)
        {
            text.Append("hlt");
            return;
        }
        text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
        if (reason != (uint)KvmExitReason.KVM_EXIT_INTERNAL_ERROR) return;
        uint ndata = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_ndata, 4));
        text.Append(CultureInfo.InvariantCulture, $" suberror {BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_suberror, 4))} ndata {ndata}");
    }

    /// <summary>first, last and the entries from first to last (phys_addr, len, pio, the len bytes of data).</summary>
    private static string Ring(ReadOnlySpan<byte> page)
    {
        int max = KvmCoalescedMmio.MaxEntries(page.Length);
        uint first = BinaryPrimitives.ReadUInt32LittleEndian(page), last = BinaryPrimitives.ReadUInt32LittleEndian(page[4..]);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"first={first} last={last}"));
        if (first >= max || last >= max) return text.ToString();
        var entries = MemoryMarshal.Cast<byte, kvm_coalesced_mmio>(page[KvmCoalescedMmio.RingHeaderSize..]);
        for (uint i = first; i != last; i = (i + 1) % (uint)max)
        {
            var e = entries[(int)i];
            var data = MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref e.data, 1));
            text.Append(CultureInfo.InvariantCulture, $" 0x{e.phys_addr:X}/{e.len}/{e.pio}={Convert.ToHexString(data[..(int)Math.Min(e.len, 8)])}");
        }
        return text.ToString();
    }
}
