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
/// <see cref="OpKind.DirtyRingRun"/>: the dirty ring (virt/kvm/dirty_ring.c, kvm_main.c
/// kvm_vm_ioctl_enable_dirty_log_ring, kvm_vm_ioctl_reset_dirty_pages, kvm_vcpu_mmap) on a fresh VM. KVM_CAP_DIRTY_LOG_RING
/// or _ACQ_REL is enabled with a size drawn around the rules (valid powers of two, 0, not a power of two, below a page,
/// above the maximum, a high half in args[0]), before or after the slot and sometimes after a vCPU (EINVAL), sometimes
/// twice; the vCPU's ring is mapped at page KVM_DIRTY_LOG_PAGE_OFFSET (now and then MAP_PRIVATE first: EINVAL); a
/// 64-bit guest in a logging host-memory slot writes pages — the random tiny program or a sweep over up to 251 pages,
/// which passes the soft limit of a 4 KiB ring (256 entries, soft limit 192): KVM_EXIT_DIRTY_RING_FULL. At every full
/// exit the entries are collected and reset; at the end of a run the distinct pages it pushed are listed (sorted), the
/// entries marked KVM_DIRTY_GFN_F_RESET (after the second run only a prefix), and KVM_RESET_DIRTY_RINGS must free
/// exactly the marked ones. A second run of the program shows the pages were write-protected again. Not compared
/// (this host, kvm_pvm, with its shadow MMU, differs from upstream and the emulator, which follow TDP): when the full
/// exit comes, how often a page is pushed, and pages pushed again without a reset (see <see cref="Harvest"/>); so the
/// second run starts after every entry of the first was collected.
/// </summary>
internal static partial class TinyGuestRun
{
    /// <summary>The sweep guest writes pages [SweepFirst, SweepEnd): free in the 64-bit layout (tables below, code at 1 MiB).</summary>
    private const int SweepFirst = 5, SweepEnd = 0x100;

    public static string RunDirtyRing(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 29 + 0xD127));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        var text = new StringBuilder();
        long anonRc = MappedRegion.Map(kernel, null, LongSlotSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out var mapped);
        if (anonRc < 0) return "mmap anonymous " + Errno(anonRc);
        using var memory = mapped!;
        bool sweep = rng.Next(2) == 0;
        string what = "program";
        byte[] code = sweep ? SweepProgram(rng, out what) : TinyGuestProgram.LongMode(seed, CodeGpa, farTransfers: false);
        text.Append(what).Append(": ");
        WriteLongModeTables(memory);
        code.CopyTo(memory.GetSpan(CodeGpa, code.Length));

        uint slotId = rng.Next(3) == 0 ? (uint)rng.Next(1, 5) : 0;
        uint flags = rng.Next(8) switch { 0 => 0, 1 => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES | KvmConstants.KVM_MEM_READONLY, _ => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES };
        var slot = new kvm_userspace_memory_region2 { slot = slotId, flags = flags, guest_phys_addr = 0, memory_size = LongSlotSize, userspace_addr = (ulong)memory.Address };
        text.Append(CultureInfo.InvariantCulture, $"slot {slotId} flags {flags}, ");

        KernelFd? vcpuFd = null;
        MappedRegion? runPage = null;
        try
        {
            // A vCPU before the ring: KVM_ENABLE_CAP is EINVAL ("We don't allow to change this value after vcpu created").
            if (rng.Next(6) == 0 && CreateMappedVcpu(kernel, system, vm, out vcpuFd, out runPage) is string early) return text + early;
            bool slotFirst = rng.Next(2) == 0;
            if (slotFirst && SetSlot(kernel, vm, slot, text) is string slotError) return slotError;
            uint ringBytes = EnableRing(kernel, vm, rng, text);
            // A second enable: EINVAL after a ring was made ("We only allow it to set once"), else it may make the ring.
            if (rng.Next(6) == 0 && EnableRing(kernel, vm, rng, text) is uint again and not 0) ringBytes = again;
            if (!slotFirst && SetSlot(kernel, vm, slot, text) is string slotError2) return slotError2;
            if (vcpuFd is null && CreateMappedVcpu(kernel, system, vm, out vcpuFd, out runPage) is string late) return text + late;
            using var ring = MapRing(kernel, vcpuFd!, ringBytes, rng, text);
            string? setup = EnterLongMode(kernel, vcpuFd!, seed);
            if (setup is not null) return text + setup;
            var state = new RingHarvest(ring, ringBytes / 16);
            RunWithRing(kernel, vm, vcpuFd!, runPage!, state, rng, text);
            text.Append(" | end ");
            Harvest(kernel, vm, state, rng, text);
            // GET_DIRTY_LOG on a VM with a ring: ENXIO (kvm_get_dirty_log_protect "if (kvm->dirty_ring_size) return -ENXIO").
            text.Append(" | get log ").Append(DirtyPages(kernel, vm, LongSlotSize / (ulong)Environment.SystemPageSize, slotId));
            setup = EnterLongMode(kernel, vcpuFd!, seed);
            if (setup is not null) return text + " | rerun " + setup;
            text.Append(" | rerun: ");
            RunWithRing(kernel, vm, vcpuFd!, runPage!, state, rng, text);
            text.Append(" | end ");
            Harvest(kernel, vm, state, rng, text, prefix: true);
            return text.ToString();
        }
        finally
        {
            runPage?.Dispose();
            vcpuFd?.Dispose();
        }
    }

    private static string? SetSlot(IKernel kernel, KernelFd vm, kvm_userspace_memory_region2 slot, StringBuilder text)
    {
        long rc = kernel.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref slot));
        return rc < 0 ? text + "memslot " + Errno(rc) : null;
    }

    /// <summary>KVM_ENABLE_CAP of a ring; the bytes of the ring it made (0 when refused).</summary>
    private static uint EnableRing(IKernel kernel, KernelFd vm, Random rng, StringBuilder text)
    {
        var cap = new kvm_enable_cap { cap = rng.Next(4) == 0 ? (uint)KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KvmCaps.KVM_CAP_DIRTY_LOG_RING, flags = rng.Next(12) == 0 ? 1u : 0 };
        cap.args[0] = rng.Next(16) switch
        {
            0 => 0,
            1 => 1000,                                        // not a power of two
            2 => 2048,                                        // below a page and the reserved entries
            3 => 2UL << 20,                                   // above KVM_DIRTY_RING_MAX_ENTRIES * 16: E2BIG
            4 => 1UL << 32 | 4096,                            // a u32 parameter: the high half is dropped
            5 => 8192,
            6 => 16384,
            _ => 4096,
        };
        long rc = kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap));
        text.Append(CultureInfo.InvariantCulture, $"ring cap {cap.cap} 0x{cap.args[0]:X} ").Append(Result(rc)).Append(", ");
        return rc == 0 ? (uint)cap.args[0] : 0;
    }

    /// <summary>The vCPU's ring mapping (none without a ring: its pages would fault SIGBUS); now and then a refused shape first.</summary>
    private static MappedRegion? MapRing(IKernel kernel, KernelFd vcpu, uint ringBytes, Random rng, StringBuilder text)
    {
        long offset = (long)KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * Environment.SystemPageSize;
        ulong length = ringBytes == 0 ? (ulong)Environment.SystemPageSize : ringBytes;
        if (rng.Next(6) == 0)
        {
            // kvm_vcpu_mmap: a ring page mapped executable or private is EINVAL.
            bool exec = rng.Next(2) == 0;
            long bad = MappedRegion.Map(kernel, vcpu, length, LinuxConstants.PROT_READ | (exec ? LinuxConstants.PROT_EXEC : 0),
                exec ? LinuxConstants.MAP_SHARED : LinuxConstants.MAP_PRIVATE, offset, out var wrong);
            wrong?.Dispose();
            text.Append(exec ? "ring mmap exec " : "ring mmap private ").Append(Result(bad)).Append(", ");
        }
        long rc = MappedRegion.Map(kernel, vcpu, length, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, offset, out var ring);
        text.Append("ring mmap ").Append(Result(rc));
        if (rc < 0 || ringBytes == 0)
        {
            ring?.Dispose();
            return null;
        }
        return ring;
    }

    /// <summary>
    /// A 64-bit loop writing one byte to each of <c>count</c> pages from a free page on, <c>stride</c> pages apart, then HLT.
    /// </summary>
    private static byte[] SweepProgram(Random rng, out string what)
    {
        int stride = rng.Next(4) == 0 ? rng.Next(2, 4) : 1;
        int first = SweepFirst + (rng.Next(3) == 0 ? rng.Next(0, 64) : 0);
        // At most 200 pages: kvm_pvm may not stop at the soft limit (192 entries of a 4 KiB ring), and a run must never
        // fill the whole ring (kvm_dirty_ring_push would overwrite entries, WARN_ON_ONCE).
        int max = Math.Min((SweepEnd - 1 - first) / stride + 1, 200);
        int count = rng.Next(3) == 0 ? rng.Next(1, max + 1) : max;
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        a.mov(rdi, (ulong)first * 0x1000);
        a.mov(ecx, count);
        a.Label(ref loop);
        a.mov(__byte_ptr[rdi], cl);
        a.add(rdi, stride * 0x1000);
        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
        what = string.Create(CultureInfo.InvariantCulture, $"sweep {count} pages from 0x{first:X} stride {stride}");
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>What userspace knows of one vCPU's ring: where the next entry to fetch is, the pages fetched in this run.</summary>
    private sealed class RingHarvest(MappedRegion? ring, uint entries)
    {
        public MappedRegion? Ring { get; } = ring;
        public uint Entries { get; } = entries;
        public uint Fetch { get; set; }
        public SortedSet<(uint Slot, ulong Offset)> Pages { get; } = [];
        public List<string> Odd { get; } = [];
    }

    /// <summary>
    /// KVM_RUN until HLT, an error or the exit limit: I/O and MMIO answered as always; a full ring harvested in full and
    /// reset, without a trace in the text (kvm_pvm ends a run in KVM_EXIT_DIRTY_RING_FULL only at one of its own
    /// exits, entries past the soft limit or none at all, where upstream and the emulator exit at the first entry
    /// after the write that reached it).
    /// </summary>
    private static void RunWithRing(IKernel kernel, KernelFd vm, KernelFd vcpu, MappedRegion run, RingHarvest state, Random rng, StringBuilder text)
    {
        bool first = true;
        // Now and then the first full exit is run again without a reset: the kernel makes the request again (not shown
        // either). Drawn before the run: how many full exits a run sees differs between the kernels.
        bool againOnce = rng.Next(4) == 0;
        for (int n = 0; n < MaxExits; n++)
        {
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (reason == (uint)KvmExitReason.KVM_EXIT_DIRTY_RING_FULL && rc == 0)
            {
                if (againOnce) againOnce = false;
                else Collect(kernel, vm, state, state.Fetch + Fetch(state), text: null);
                continue;
            }
            if (!first) text.Append("; ");
            first = false;
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                return;
            }
            switch ((KvmExitReason)reason)
            {
                case KvmExitReason.KVM_EXIT_IO:
                    if (!AppendIoExit(run, text, n)) return;
                    break;
                case KvmExitReason.KVM_EXIT_MMIO:
                    AppendMmioExit(run, text, n);
                    break;
                case KvmExitReason.KVM_EXIT_HLT:
                    text.Append("hlt");
                    return;
                default:
                    text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                    return;
            }
        }
        text.Append("; exit limit");
    }

    /// <summary>
    /// Fetches the entries published since the last fetch into <see cref="RingHarvest.Pages"/> (entries with flags other
    /// than KVM_DIRTY_GFN_F_DIRTY noted); returns how many.
    /// </summary>
    private static uint Fetch(RingHarvest state)
    {
        if (state.Ring is not { } ring) return 0;
        uint i = 0;
        for (; i < state.Entries; i++)
        {
            uint index = state.Fetch + i;
            ref var e = ref Entry(ring, index, state.Entries);
            uint flags = Volatile.Read(ref e.flags);
            if ((flags & KvmConstants.KVM_DIRTY_GFN_F_DIRTY) == 0) break;
            if (flags != KvmConstants.KVM_DIRTY_GFN_F_DIRTY) state.Odd.Add(string.Create(CultureInfo.InvariantCulture, $"flags {flags}"));
            state.Pages.Add((e.slot, e.offset));
        }
        return i;
    }

    /// <summary>
    /// Marks the fetched entries up to <paramref name="upTo"/> collected (KVM_DIRTY_GFN_F_RESET) and calls
    /// KVM_RESET_DIRTY_RINGS: its count must be the number marked, and a freed entry reads flags 0.
    /// </summary>
    private static void Collect(IKernel kernel, KernelFd vm, RingHarvest state, uint upTo, StringBuilder? text)
    {
        uint marked = upTo - state.Fetch;
        for (uint index = state.Fetch; index != upTo; index++)
        {
            ref var e = ref Entry(state.Ring!, index, state.Entries);
            Volatile.Write(ref e.flags, KvmConstants.KVM_DIRTY_GFN_F_DIRTY | KvmConstants.KVM_DIRTY_GFN_F_RESET);
        }
        long reset = kernel.Ioctl(vm, KvmIoctls.KVM_RESET_DIRTY_RINGS, 0UL);
        string outcome = reset == marked ? "reset all marked" : reset < 0 ? "reset " + Errno(reset) : string.Create(CultureInfo.InvariantCulture, $"reset {reset} of {marked} marked");
        if (marked > 0 && Volatile.Read(ref Entry(state.Ring!, upTo - 1, state.Entries).flags) != 0) outcome += ", a freed entry keeps its flags";
        if (text is not null) text.Append(' ').Append(outcome);
        else if (reset != marked) state.Odd.Add(outcome);
        state.Fetch = upTo;
    }

    /// <summary>
    /// The end of a run: the distinct pages the ring showed in it, sorted — one vCPU, but kvm_pvm pushes a page again for
    /// each guest page-table A/D update and each emulated write (kvm_pvm's shadow MMU: make_spte pushes whenever it
    /// installs a writable SPTE, and KVM_SET_SREGS zaps them), where the emulator pushes a page once per write-protection
    /// — then entries marked collected (all of them, or the ones up to the first of a random number of distinct
    /// pages when <paramref name="prefix"/>) and KVM_RESET_DIRTY_RINGS.
    /// </summary>
    private static void Harvest(IKernel kernel, KernelFd vm, RingHarvest state, Random rng, StringBuilder text, bool prefix = false)
    {
        uint start = state.Fetch;
        uint count = Fetch(state);
        text.Append(CultureInfo.InvariantCulture, $"{state.Pages.Count} pages [").Append(Folded(state.Pages)).Append(']');
        foreach (var odd in state.Odd.Distinct()) text.Append(", ").Append(odd);
        if (state.Ring is null)
        {
            long reset = kernel.Ioctl(vm, KvmIoctls.KVM_RESET_DIRTY_RINGS, 0UL);
            text.Append(" reset ").Append(reset >= 0 ? reset.ToString(CultureInfo.InvariantCulture) : Errno(reset));
            return;
        }
        uint upTo = start + count;
        if (prefix && state.Pages.Count > 0)
        {
            // Entries before the first one of the (k+1)-th distinct page in ring order: the same pages on both kernels.
            int keep = rng.Next(0, state.Pages.Count + 1);
            var seen = new HashSet<(uint, ulong)>();
            for (uint index = start; index != start + count; index++)
            {
                ref var e = ref Entry(state.Ring, index, state.Entries);
                if (seen.Add((e.slot, e.offset)) && seen.Count > keep)
                {
                    upTo = index;
                    break;
                }
            }
            text.Append(CultureInfo.InvariantCulture, $" collected {Math.Min(keep, state.Pages.Count)}");
        }
        Collect(kernel, vm, state, upTo, text);
        state.Pages.Clear();
        state.Odd.Clear();
    }

    private static ref kvm_dirty_gfn Entry(MappedRegion ring, uint index, uint entries) =>
        ref MemoryMarshal.AsRef<kvm_dirty_gfn>(ring.GetSpan((ulong)(index & (entries - 1)) * 16, 16));

    private static string Folded(SortedSet<(uint Slot, ulong Offset)> pages)
    {
        var entries = pages.ToList();
        var parts = new List<string>();
        for (int i = 0; i < entries.Count; i++)
        {
            int j = i;
            while (j + 1 < entries.Count && entries[j + 1].Slot == entries[i].Slot && entries[j + 1].Offset == entries[j].Offset + 1) j++;
            parts.Add(j == i
                ? string.Create(CultureInfo.InvariantCulture, $"{entries[i].Slot:X}:{entries[i].Offset:X}")
                : string.Create(CultureInfo.InvariantCulture, $"{entries[i].Slot:X}:{entries[i].Offset:X}-{entries[j].Offset:X}"));
            i = j;
        }
        return string.Join(",", parts);
    }
}
