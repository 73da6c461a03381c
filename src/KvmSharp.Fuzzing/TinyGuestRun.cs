// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// One tiny guest from start to end on one kernel, through raw ioctls only (both kernels see the same bytes): a fresh
/// VM, one slot — a MMAP|INIT_SHARED guest_memfd, or anonymous host memory (for a kernel without guest_memfd; same
/// layout, same program) — one vCPU running <see cref="TinyGuestProgram"/>; every exit is answered
/// with data derived from the exit itself, and the text returned lists the exits, the final registers and a hash of
/// the memory the program can write. The VM is torn down before returning, so a run never shares state with the
/// session's other objects (no slot is ever deleted and re-added: docs/STATUS.md "Re-adding a deleted memslot makes the
/// next guest entry triple-fault" on kvm_pvm). With dirty logging (host memory only: guest_memfd slots cannot log) the
/// slot has KVM_MEM_LOG_DIRTY_PAGES, sometimes manual protect and KVM_MEM_READONLY too; the text adds the dirty pages
/// after the run, one step with the log, a second run of the program and the pages it dirtied.
/// </summary>
internal static partial class TinyGuestRun
{
    /// <summary>More exits than any program can make (at most two per instruction): a guest that exceeds it loops.</summary>
    private const int MaxExits = 2 * TinyGuestProgram.MaxInstructions + 4;

    // 64-bit layout (GPA = offset in the slot's memory): GDT, PML4 → PDPT → PD of 2 MiB pages identity-mapping
    // [0, 8 MiB), code, data, stack; the slot covers [0, 2 MiB), so [2 MiB, 8 MiB) is mapped by the guest's page tables
    // but has no memslot.
    private const ulong LongSlotSize = 0x20_0000, GdtGpa = 0x1000, Pml4 = 0x2000, Pdpt = 0x3000, Pd = 0x4000;
    private const ulong CodeGpa = 0x10_0000, DataGpa = 0x18_0000, StackTop = 0x1F_0000, MmioGpa = 0x40_0000;

    // Real mode: CS = DS = SS base 0x10000; the slot covers offsets [0, 0x8000), so DS:0x8000 is past it (MMIO).
    private const ulong RealSlotGpa = 0x1_0000, RealSlotSize = 0x8000;
    private const int RealData = 0x4000, RealMmio = 0x8000, RealStackTop = 0x7FF0;

    private const ulong CodeSegment = 0x00AF_9B00_0000_FFFF, DataSegment = 0x00CF_9300_0000_FFFF;

    public static string Run(IKernel kernel, KernelFd system, ulong seed, bool realMode, bool hostMemory = false, bool dirtyLog = false, bool farTransfers = false,
        bool withReported = false)
    {
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        var text = new StringBuilder();
        // Dirty logging draws from its own stream: the program and the registers are the seed's, logging or not.
        var dirty = dirtyLog ? new Random(unchecked((int)seed * 31 + 0x5D17)) : null;
        if (dirty is not null)
        {
            ulong manual = dirty.Next(3) switch
            {
                0 => 0,
                1 => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
                _ => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET,
            };
            if (manual != 0)
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
                cap.args[0] = manual;
                long capRc = kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap));
                if (capRc < 0) return "enable manual dirty log protect " + Errno(capRc);
            }
            text.Append(CultureInfo.InvariantCulture, $"manual protect {manual}: ");
        }
        // Now and then a read-only logging slot: every guest write to it is emulated MMIO, and none is logged. (A far
        // transfer there reads its pointer back as zeros: a null selector, #GP without an IDT, KVM_EXIT_SHUTDOWN.)
        bool readOnly = dirty?.Next(6) == 0;
        if (readOnly) text.Append("read-only slot: ");
        ulong size = realMode ? RealSlotSize : LongSlotSize;
        KernelFd? gmem = null;
        MappedRegion? mapped;
        if (hostMemory)
        {
            long anonRc = MappedRegion.Map(kernel, null, size, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out mapped);
            if (anonRc < 0) return "mmap anonymous " + Errno(anonRc);
        }
        else
        {
            var create = new kvm_create_guest_memfd { size = size, flags = KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED };
            long gmemRc = kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Bytes(ref create));
            if (gmemRc < 0) return "create gmem " + Errno(gmemRc);
            gmem = kernel.Adopt((int)gmemRc);
            long mapRc = MappedRegion.Map(kernel, gmem, size, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out mapped);
            if (mapRc < 0)
            {
                gmem.Dispose();
                return "mmap gmem " + Errno(mapRc);
            }
        }
        using var file = gmem;
        using var memory = mapped!;
        // INS into a read-only slot is drawn too: the batch's write is emulated MMIO, 8 bytes per KVM_EXIT_MMIO
        // (x86.c complete_emulated_mmio; the emulator's X86Emulator.StringIo.cs, conformance StringPortIoToMmio). Ring changes (a third of
        // the 64-bit seeds) never with dirty logging: kvm_pvm's shadow MMU logs the code page when ring 3 first
        // fetches it after a write made its 2 MiB guest PDE dirty (a writable SPTE), upstream TDP does not.
        RingEntries? rings = null;
        byte[] code = realMode ? TinyGuestProgram.RealMode(seed, RealData, RealMmio)
            : TinyGuestProgram.LongMode(seed, CodeGpa, farTransfers, stringIn: true, rings: dirty is null, withReported, out rings);
        if (!realMode) WriteLongModeTables(memory);
        if (rings is not null) WriteRingTables(memory, rings);
        code.CopyTo(memory.GetSpan(realMode ? 0 : CodeGpa, code.Length));

        // HostDeviations.KvmPvmGmemNeedsUserspaceMapping: on kvm_pvm a vCPU reaches gmem only through a userspace
        // mapping of it, so userspace_addr is always the gmem's own shared mapping (never 0). Host memory is a plain slot.
        var slot = new kvm_userspace_memory_region2
        {
            slot = 0, flags = (gmem is null ? 0 : KvmConstants.KVM_MEM_GUEST_MEMFD) | (dirtyLog ? KvmConstants.KVM_MEM_LOG_DIRTY_PAGES : 0) | (readOnly ? KvmConstants.KVM_MEM_READONLY : 0), guest_phys_addr = realMode ? RealSlotGpa : 0, memory_size = size,
            userspace_addr = (ulong)memory.Address, guest_memfd = gmem is null ? 0 : (uint)gmem.Number, guest_memfd_offset = 0,
        };
        long slotRc = kernel.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref slot));
        if (slotRc < 0) return "memslot " + Errno(slotRc);

        if (CreateMappedVcpu(kernel, system, vm, out var createdVcpu, out var runMapped) is string vcpuError) return vcpuError;
        using var vcpu = createdVcpu!;
        using var run = runMapped!;

        string? setup = realMode ? EnterRealMode(kernel, vcpu, seed) : EnterLongMode(kernel, vcpu, seed);
        if (setup is null && rings is not null) setup = EnterRings(kernel, vcpu, rings);
        if (setup is not null) return setup;

        RunExits(kernel, vcpu, run, text);
        if (dirty is not null)
        {
            string? again = DirtyLogAndRunAgain(kernel, vm, vcpu, run, slot, dirty, seed, realMode, text, rings);
            if (again is not null) return again;
        }
        AppendRegs(kernel, vcpu, text, out _);
        ulong data = realMode ? RealData : DataGpa, stack = realMode ? RealStackTop : StackTop;
        text.Append(CultureInfo.InvariantCulture, $" | data=0x{Fnv(memory.GetSpan(data, 0x1000)):X16} stack=0x{Fnv(memory.GetSpan(stack - 0x100, 0x110)):X16}");
        if (rings is not null) AppendRingFrame(memory, text);
        return text.ToString();
    }

    /// <summary>
    /// The dirty log after the first run, one step with it (KVM_CLEAR_DIRTY_LOG of all or part of the slot, logging
    /// toggled off and on, another KVM_GET_DIRTY_LOG, or nothing), the program again from its first instruction, and
    /// the log once more: what was written, what stays logged, and that pages are write-protected again.
    /// </summary>
    private static string? DirtyLogAndRunAgain(IKernel kernel, KernelFd vm, KernelFd vcpu, MappedRegion run, kvm_userspace_memory_region2 slot,
        Random dirty, ulong seed, bool realMode, StringBuilder text, RingEntries? rings)
    {
        ulong pages = slot.memory_size / (ulong)Environment.SystemPageSize;
        text.Append(" | dirty ").Append(DirtyPages(kernel, vm, pages));
        switch (dirty.Next(4))
        {
            case 0:
            {
                // The whole slot, or whole longs of it (a partial range must be a multiple of 64 pages).
                ulong first = 0, num = pages;
                if (pages > 64 && dirty.Next(2) == 0)
                {
                    first = 64 * (ulong)dirty.Next(0, (int)(pages / 64));
                    num = 64 * (ulong)dirty.Next(1, (int)((pages - first) / 64) + 1);
                }
                var mask = GC.AllocateArray<ulong>((int)((num + 63) / 64), pinned: true);
                for (int i = 0; i < mask.Length; i++) mask[i] = dirty.Next(3) == 0 ? (ulong)dirty.NextInt64() : ulong.MaxValue;
                var clear = new kvm_clear_dirty_log { slot = 0, first_page = first, num_pages = (uint)num, dirty_bitmap = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(mask, 0) };
                long rc = kernel.Ioctl(vm, KvmIoctls.KVM_CLEAR_DIRTY_LOG, Bytes(ref clear));
                GC.KeepAlive(mask);
                text.Append(CultureInfo.InvariantCulture, $" | clear 0x{first:X}+0x{num:X} {Result(rc)}");
                break;
            }
            case 1:
            {
                // KVM_MR_FLAGS_ONLY twice: the bitmap is freed, then a new one starts (all set with INITIALLY_SET).
                var off = slot with { flags = slot.flags & ~KvmConstants.KVM_MEM_LOG_DIRTY_PAGES };
                long offRc = kernel.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref off));
                long onRc = kernel.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref slot));
                text.Append(CultureInfo.InvariantCulture, $" | logging off {Result(offRc)}, on {Result(onRc)}");
                break;
            }
            case 2:
                text.Append(" | again ").Append(DirtyPages(kernel, vm, pages));
                break;
        }
        string? setup = realMode ? EnterRealMode(kernel, vcpu, seed) : EnterLongMode(kernel, vcpu, seed);
        if (setup is null && rings is not null) setup = EnterRings(kernel, vcpu, rings);
        if (setup is not null) return text + " | rerun " + setup;
        text.Append(" | rerun: ");
        RunExits(kernel, vcpu, run, text);
        text.Append(" | dirty ").Append(DirtyPages(kernel, vm, pages));
        return null;
    }

    /// <summary>KVM_GET_DIRTY_LOG of a slot (0 unless given) as the dirty page numbers; a word past the bitmap must stay untouched.</summary>
    private static string DirtyPages(IKernel kernel, KernelFd vm, ulong pages, uint slot = 0)
    {
        const ulong Fill = 0xA5A5_A5A5_A5A5_A5A5;
        int words = (int)((pages + 63) / 64);
        var bitmap = GC.AllocateArray<ulong>(words + 1, pinned: true);
        Array.Fill(bitmap, Fill);
        var log = new kvm_dirty_log { slot = slot, dirty_bitmap = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(bitmap, 0) };
        long rc = kernel.Ioctl(vm, KvmIoctls.KVM_GET_DIRTY_LOG, Bytes(ref log));
        GC.KeepAlive(bitmap);
        if (rc != 0) return Result(rc);
        // Runs of dirty pages: "180,1EF-1F0", or "0-1FF" for a log that starts all set (KVM_DIRTY_LOG_INITIALLY_SET).
        var dirty = new List<string>();
        ulong all = (ulong)words * 64;
        for (ulong page = 0; page < all; page++)
        {
            if ((bitmap[page / 64] >> (int)(page % 64) & 1) == 0) continue;
            ulong last = page;
            while (last + 1 < all && (bitmap[(last + 1) / 64] >> (int)((last + 1) % 64) & 1) != 0) last++;
            dirty.Add(last == page ? page.ToString("X", CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{page:X}-{last:X}"));
            page = last;
        }
        return "[" + string.Join(",", dirty) + "]" + (bitmap[words] == Fill ? "" : " past the bitmap: 0x" + bitmap[words].ToString("X", CultureInfo.InvariantCulture));
    }

    private static void RunExits(IKernel kernel, KernelFd vcpu, MappedRegion run, StringBuilder text)
    {
        for (int n = 0; n < MaxExits; n++)
        {
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (n > 0) text.Append("; ");
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                if (reason == (uint)KvmExitReason.KVM_EXIT_MEMORY_FAULT)
                    text.Append(CultureInfo.InvariantCulture, $" gpa=0x{U64(run, KvmRunLayout.memory_fault_gpa):X} flags=0x{U64(run, KvmRunLayout.memory_fault_flags):X}");
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
                case KvmExitReason.KVM_EXIT_INTERNAL_ERROR:
                    text.Append(CultureInfo.InvariantCulture, $"internal error {BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.internal_suberror, 4))}");
                    return;
                default:
                    text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                    return;
            }
        }
        text.Append("; exit limit");
        CompletePending(kernel, vcpu, run, text);
    }

    /// <summary>
    /// Documentation/virt/kvm/api.rst, KVM_RUN: "For KVM_EXIT_IO, KVM_EXIT_MMIO, … the corresponding operations are
    /// complete (and guest state is consistent) only after userspace has re-entered the kernel with KVM_RUN", which it
    /// can do "with the immediate_exit field set to complete pending operations without allowing any further
    /// instructions to be executed". An IN or MMIO access the exit limit left pending is finished that way before the
    /// run's state is read or set again (KVM would otherwise finish it at the next KVM_RUN with the registers set
    /// since: x86.c emulator_pio_in_emulated "userspace can modify ECX before rerunning the vCPU"); the exits that
    /// completion still makes (the MMIO writes of an INS batch) are shown.
    /// </summary>
    private static void CompletePending(IKernel kernel, KernelFd vcpu, MappedRegion run, StringBuilder text)
    {
        run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
        try
        {
            for (int n = MaxExits; n < MaxExits + 2048; n++)
            {
                long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
                if (rc < 0)
                {
                    if (rc != -4) text.Append(CultureInfo.InvariantCulture, $"; completing: KVM_RUN {Errno(rc)}");
                    return;
                }
                uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
                text.Append("; completing: ");
                if (reason == (uint)KvmExitReason.KVM_EXIT_MMIO) AppendMmioExit(run, text, n);
                else if (reason != (uint)KvmExitReason.KVM_EXIT_IO || !AppendIoExit(run, text, n))
                {
                    text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                    return;
                }
            }
        }
        finally
        {
            run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 0;
        }
    }

    /// <summary>
    /// Describes a KVM_EXIT_IO, answering an IN with io.size * io.count bytes (a REP INS batch is up to 1024:
    /// emulate.c pio_in_emulated); false when its data lies outside the vCPU mapping.
    /// </summary>
    private static bool AppendIoExit(MappedRegion run, StringBuilder text, int n)
    {
        byte dir = run.GetSpan(KvmRunLayout.io_direction, 1)[0];
        byte size = run.GetSpan(KvmRunLayout.io_size, 1)[0];
        ushort port = BinaryPrimitives.ReadUInt16LittleEndian(run.GetSpan(KvmRunLayout.io_port, 2));
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.io_count, 4));
        ulong offset = U64(run, KvmRunLayout.io_data_offset);
        int bytes = (int)Math.Min((ulong)size * count, dir == KvmConstants.KVM_EXIT_IO_OUT ? 64UL : 0x1000UL);
        if (offset > run.Length || (ulong)bytes > run.Length - offset)
        {
            text.Append(CultureInfo.InvariantCulture, $"io port=0x{port:X} data_offset 0x{offset:X} outside the vcpu mapping");
            return false;
        }
        var data = run.GetSpan(offset, bytes);
        if (dir == KvmConstants.KVM_EXIT_IO_OUT)
        {
            text.Append(CultureInfo.InvariantCulture, $"out port=0x{port:X} size={size} count={count} data={Convert.ToHexString(data)}");
        }
        else
        {
            Answer(data, port, n);
            text.Append(CultureInfo.InvariantCulture, $"in port=0x{port:X} size={size} count={count}");
        }
        return true;
    }

    /// <summary>Describes a KVM_EXIT_MMIO (answering a read).</summary>
    private static void AppendMmioExit(MappedRegion run, StringBuilder text, int n)
    {
        ulong gpa = U64(run, KvmRunLayout.mmio_phys_addr);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.mmio_len, 4));
        bool write = run.GetSpan(KvmRunLayout.mmio_is_write, 1)[0] != 0;
        var data = run.GetSpan(KvmRunLayout.mmio_data, (int)Math.Min(len, 8));
        if (write)
        {
            text.Append(CultureInfo.InvariantCulture, $"mmio write 0x{gpa:X} len={len} data={Convert.ToHexString(data)}");
        }
        else
        {
            Answer(data, gpa, n);
            text.Append(CultureInfo.InvariantCulture, $"mmio read 0x{gpa:X} len={len}");
        }
    }

    /// <summary>What the "device" answers: the same bytes on both kernels, different per address and per exit.</summary>
    private static void Answer(Span<byte> data, ulong where, int exit)
    {
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(0x5A ^ (where >> (i % 4 * 8)) ^ (ulong)(i * 0x11) ^ (ulong)exit);
    }

    /// <summary>
    /// GDT and identity page tables with Accessed/Dirty clear: the walker sets them (paging_tmpl.h
    /// FNAME(update_accessed_dirty_bits)) on both kernels, so the table pages show in a dirty log on both.
    /// </summary>
    private static void WriteLongModeTables(MappedRegion memory)
    {
        var gdt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(GdtGpa, 24));
        gdt[0] = 0;
        gdt[1] = CodeSegment;
        gdt[2] = DataSegment;
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pml4, 8))[0] = Pdpt | 3;
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pdpt, 8))[0] = Pd | 3;
        var pd = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pd, 32));
        // Present | writable | 2 MiB page.
        for (int i = 0; i < pd.Length; i++) pd[i] = ((ulong)i << 21) | 0x83;
    }

    private static string? EnterLongMode(IKernel kernel, KernelFd vcpu, ulong seed, ulong idtBase = 0, ushort idtLimit = 0)
    {
        var s = new kvm_sregs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rc < 0) return "get sregs " + Errno(rc);
        s.cr0 = 0x8001_0033; // PE MP ET NE WP PG
        s.cr3 = Pml4;
        s.cr4 = 0x620; // PAE OSFXSR OSXMMEXCPT
        s.efer = 0x500; // LME LMA
        s.gdt.@base = GdtGpa;
        s.gdt.limit = 23;
        s.idt.@base = idtBase;
        s.idt.limit = idtLimit;
        s.cs = new kvm_segment { @base = 0, limit = 0xFFFF_FFFF, selector = 8, type = 0xB, present = 1, s = 1, l = 1, g = 1 };
        var data = new kvm_segment { @base = 0, limit = 0xFFFF_FFFF, selector = 0x10, type = 3, present = 1, db = 1, s = 1, g = 1 };
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        if (rc < 0) return "set sregs " + Errno(rc);
        var regs = SeededRegs(seed);
        regs.rip = CodeGpa;
        regs.rsp = StackTop;
        regs.r14 = MmioGpa;
        regs.r15 = DataGpa;
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_REGS, Bytes(ref regs));
        return rc < 0 ? "set regs " + Errno(rc) : null;
    }

    private static string? EnterRealMode(IKernel kernel, KernelFd vcpu, ulong seed)
    {
        var s = new kvm_sregs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rc < 0) return "get sregs " + Errno(rc);
        (s.cs.@base, s.cs.selector) = (RealSlotGpa, (ushort)(RealSlotGpa >> 4));
        (s.ds.@base, s.ds.selector) = (RealSlotGpa, (ushort)(RealSlotGpa >> 4));
        (s.es.@base, s.es.selector) = (RealSlotGpa, (ushort)(RealSlotGpa >> 4));
        (s.ss.@base, s.ss.selector) = (RealSlotGpa, (ushort)(RealSlotGpa >> 4));
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        if (rc < 0) return "set sregs " + Errno(rc);
        var regs = SeededRegs(seed);
        regs.rip = 0;
        regs.rsp = RealStackTop;
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_REGS, Bytes(ref regs));
        return rc < 0 ? "set regs " + Errno(rc) : null;
    }

    /// <summary>General registers the program starts with, so loads and arithmetic do not all begin at 0.</summary>
    private static kvm_regs SeededRegs(ulong seed)
    {
        var rng = new Random((int)(seed * 31 + 7));
        var regs = new kvm_regs();
        Span<ulong> all = MemoryMarshal.Cast<byte, ulong>(Bytes(ref regs));
        for (int i = 0; i < 16; i++) all[i] = (ulong)rng.NextInt64();
        regs.rflags = 2;
        return regs;
    }

    private static ulong U64(MappedRegion run, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(run.GetSpan((ulong)offset, 8));

    private static ulong Fnv(ReadOnlySpan<byte> bytes)
    {
        ulong h = 0xcbf29ce484222325;
        foreach (byte b in bytes) h = (h ^ b) * 0x100000001b3;
        return h;
    }

    private static string Result(long rc) => rc == 0 ? "ok" : Errno(rc);

    private static string Errno(long rc) =>
        rc < 0 && rc >= -LinuxConstants.MAX_ERRNO ? ErrnoInfo.NameOf((int)-rc) : "value " + rc.ToString(CultureInfo.InvariantCulture);

    private static Span<byte> Bytes<T>(ref T value) where T : unmanaged => MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));

    /// <summary>
    /// KVM_CREATE_VCPU 0 and its kvm_run mapping (the size from /dev/kvm); the failing step's text, or null when both
    /// are there (the caller owns them).
    /// </summary>
    private static string? CreateMappedVcpu(IKernel kernel, KernelFd system, KernelFd vm, out KernelFd? vcpu, out MappedRegion? run)
    {
        run = null;
        vcpu = null;
        long vcpuRc = kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        if (vcpuRc < 0) return "create vcpu " + Errno(vcpuRc);
        var created = kernel.Adopt((int)vcpuRc);
        long mmapSize = kernel.Ioctl(system, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL);
        long runRc = mmapSize <= 0 ? mmapSize
            : MappedRegion.Map(kernel, created, (ulong)mmapSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out run);
        if (mmapSize <= 0 || runRc < 0)
        {
            created.Dispose();
            return mmapSize <= 0 ? "vcpu mmap size " + Errno(mmapSize) : "mmap vcpu " + Errno(runRc);
        }
        vcpu = created;
        return null;
    }
}
