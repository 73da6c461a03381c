// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// tools/testing/selftests/kvm/x86/private_mem_conversions_test.c (torvalds/linux, "Copyright (C) 2022, Google LLC";
/// the version with u64/gpa_t and kvm_pthread_create): a KVM_X86_SW_PROTECTED_VM guest converts ranges of its data
/// between shared and private with KVM_HC_MAP_GPA_RANGE; the host answers each hypercall with
/// KVM_SET_MEMORY_ATTRIBUTES (and fallocate on the guest_memfd when asked) and, at each sync, checks that it always
/// sees the shared data and writes new shared patterns. Then PUNCH_HOLE must free private memory: reads after a
/// punch are zero. The guest is generated per range of test_ranges[] (the upstream loops unrolled); memset is
/// REP STOSB and memcmp_g is REPE SCASB (a mismatch reports the check and address, upstream's GUEST_ASSERT).
/// <para>
/// main() runs one test_mem_conversions(src_type, nr_vcpus, nr_memslots): the defaults (1, 1) and the <c>-n</c>/<c>-m</c>
/// runs below, always with anonymous memory (the default src_type). Every vCPU runs the same guest_code on its own
/// per_cpu_size chunk, on its own host thread that answers its hypercalls and syncs; the memslots split one
/// guest_memfd evenly (slot i at file offset slot_size * i), so with more memslots than vCPUs a chunk crosses slots.
/// </para>
/// </summary>
public static class PrivateMemConversionsTest
{
    private const uint BaseDataSlot = 10;
    private const ulong BaseDataGpa = 1UL << 32;
    private const ulong Ps = 4096, Sz2M = 2UL << 20;
    private const ulong PerCpuDataSize = Sz2M + Ps;

    private const byte SyncPort = 0x10, AbortPort = 0x11;
    private const int SyncShared = 0, SyncPrivate = 1;

    // Arbitrary values, KVM doesn't care about the attribute flags.
    private const ulong MapGpaSetAttributes = 1 << 0, MapGpaShared = 1 << 1, MapGpaDoFallocate = 1 << 2;

    private static readonly (ulong Offset, ulong Size)[] TestRanges =
    [
        (0, Ps), (0, Sz2M), (Ps, Ps), (Ps, Sz2M), (Sz2M, Ps),
    ];

    /// <summary>
    /// Emits the guest: guest_code(base_gpa) with its helpers inlined. Like upstream, one program serves every vCPU:
    /// base_gpa arrives in RDI (vcpu_args_set) and stays in R15, and every address is R15 + an offset in the vCPU's chunk.
    /// </summary>
    private sealed class GuestWriter(Assembler a)
    {
        private int _checks;

        public List<string> Checks { get; } = [];

        /// <summary>The entry: keep base_gpa (the first argument) where no helper touches it.</summary>
        public void Prologue() => a.mov(r15, rdi);

        public void Memset(ulong offset, byte pattern, ulong size)
        {
            a.lea(rdi, __[r15 + (int)offset]);
            a.mov(al, pattern);
            a.mov(rcx, (long)size);
            a.rep.stosb();
        }

        /// <summary>memcmp_g: every byte of [base + offset, +size) is <paramref name="pattern"/>, else GUEST_ASSERT fails.</summary>
        public void MemcmpG(ulong offset, byte pattern, ulong size, string what)
        {
            var ok = a.CreateLabel();
            a.lea(rdi, __[r15 + (int)offset]);
            a.mov(al, pattern);
            a.mov(rcx, (long)size);
            a.repe.scasb();
            a.je(ok);
            a.mov(esi, _checks++);
            a.@out(AbortPort, al);
            a.hlt();
            a.Label(ref ok);
            Checks.Add($"{what}: guest expected 0x{pattern:X2} in [base_gpa + 0x{offset:X}, +0x{size:X})");
        }

        /// <summary>GUEST_SYNC5(cmd, base + offset, size, current_pattern, new_pattern).</summary>
        public void Sync(int cmd, ulong offset, ulong size, byte current, byte next = 0)
        {
            a.mov(edi, cmd);
            a.lea(rsi, __[r15 + (int)offset]);
            a.mov(rdx, (long)size);
            a.mov(ecx, current);
            a.mov(r8d, next);
            a.@out(SyncPort, al);
        }

        /// <summary>kvm_hypercall_map_gpa_range(base + offset, size, flags): RAX = 12, RBX = gpa, RCX = pages, RDX = flags.</summary>
        public void MapGpaRange(ulong offset, ulong size, ulong flags)
        {
            a.mov(eax, (int)KvmPara.KVM_HC_MAP_GPA_RANGE);
            a.lea(rbx, __[r15 + (int)offset]);
            a.mov(rcx, (long)(size / Ps));
            a.mov(rdx, (long)flags);
            a.vmcall();
        }

        public void MapMem(ulong offset, ulong size, bool shared, bool fallocate) =>
            MapGpaRange(offset, size, MapGpaSetAttributes | (shared ? MapGpaShared : 0) | (fallocate ? MapGpaDoFallocate : 0));

        /// <summary>guest_test_explicit_conversion(base_gpa, do_fallocate); addresses are offsets from base_gpa (R15).</summary>
        public void ExplicitConversion(bool doFallocate)
        {
            const ulong baseGpa = 0;
            const byte defP = 0xaa, initP = 0xcc;
            // Memory should be shared by default.
            Memset(baseGpa, defP, PerCpuDataSize);
            MemcmpG(baseGpa, defP, PerCpuDataSize, "shared by default");
            Sync(SyncShared, baseGpa, PerCpuDataSize, defP, initP);
            MemcmpG(baseGpa, initP, PerCpuDataSize, "the host's initial pattern");

            foreach (var (offset, size) in TestRanges)
            {
                ulong gpa = baseGpa + offset;
                const byte p1 = 0x11, p2 = 0x22, p3 = 0x33, p4 = 0x44;
                Memset(gpa, p1, size);
                MapMem(gpa, size, shared: false, doFallocate);
                if (size > Ps)
                {
                    Memset(gpa, p2, Ps);
                }
                else
                {
                    Memset(gpa, p2, size);
                    Sync(SyncPrivate, gpa, size, p1);
                    MemcmpG(gpa, p2, size, "private data");
                    if (gpa > baseGpa) MemcmpG(baseGpa, initP, gpa - baseGpa, "shared data below");
                    if (gpa + size < baseGpa + PerCpuDataSize)
                        MemcmpG(gpa + size, initP, baseGpa + PerCpuDataSize - (gpa + size), "shared data above");
                    // Odd page frames back to shared (the loop over j has one, even, page here).
                    for (ulong j = 0; j < size; j += Ps)
                    {
                        if (((j / Ps) & 1) != 0)
                        {
                            MapMem(gpa + j, Ps, shared: true, doFallocate);
                            Sync(SyncShared, gpa + j, Ps, p1, p3);
                            MemcmpG(gpa + j, p3, Ps, "odd page made shared");
                        }
                        else
                        {
                            Sync(SyncPrivate, gpa + j, Ps, p1);
                        }
                    }
                }
                // skip: the whole region back to shared, pattern three, the host checks it and writes four.
                MapMem(gpa, size, shared: true, doFallocate);
                Memset(gpa, p3, size);
                Sync(SyncShared, gpa, size, p3, p4);
                MemcmpG(gpa, p4, size, "the host's pattern four");
                Memset(gpa, initP, size);
                // Free all private memory for a clean slate.
                MapMem(baseGpa, PerCpuDataSize, shared: true, fallocate: true);
            }
        }

        /// <summary>guest_test_punch_hole(base_gpa, precise); addresses are offsets from base_gpa (R15).</summary>
        public void PunchHole(bool precise)
        {
            const ulong baseGpa = 0;
            const byte initP = 0xcc;
            MapMem(baseGpa, PerCpuDataSize, shared: false, fallocate: false);
            foreach (var (offset, size) in TestRanges)
            {
                ulong gpa = baseGpa + offset;
                MapGpaRange(baseGpa, PerCpuDataSize, MapGpaShared | MapGpaDoFallocate);
                if (precise)
                {
                    Memset(gpa, initP, size);
                    MemcmpG(gpa, initP, size, "faulted-in private memory");
                }
                else
                {
                    Memset(baseGpa, initP, PerCpuDataSize);
                    MemcmpG(baseGpa, initP, PerCpuDataSize, "faulted-in private memory");
                }
                MapGpaRange(gpa, size, MapGpaShared | MapGpaDoFallocate);
                MemcmpG(gpa, 0, size, "a punched hole reads zero");
            }
        }
    }

    [ConformanceCase("x86/private_mem_conversions_test.c test_mem_conversions (1 vCPU, 1 memslot, anonymous): guest_test_explicit_conversion and guest_test_punch_hole",
        Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_mem_conversions(CaseContext ctx) => TestMemConversions(ctx, nrVcpus: 1, nrMemslots: 1);

    [ConformanceCase("x86/private_mem_conversions_test.c test_mem_conversions (-n 2 -m 1: 2 vCPUs, 1 memslot, anonymous): each vCPU converts its own 4 MiB chunk of one slot, concurrently",
        Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_mem_conversions_2_vcpus_1_memslot(CaseContext ctx) => TestMemConversions(ctx, nrVcpus: 2, nrMemslots: 1);

    [ConformanceCase("x86/private_mem_conversions_test.c test_mem_conversions (-n 2 -m 2: 2 vCPUs, 2 memslots, anonymous): one slot per vCPU, both bound to one guest_memfd at different offsets",
        Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_mem_conversions_2_vcpus_2_memslots(CaseContext ctx) => TestMemConversions(ctx, nrVcpus: 2, nrMemslots: 2);

    [ConformanceCase("x86/private_mem_conversions_test.c test_mem_conversions (-n 1 -m 2: 1 vCPU, 2 memslots, anonymous): the vCPU's data and some of its test ranges cross from one slot into the next",
        Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_mem_conversions_1_vcpu_2_memslots(CaseContext ctx) => TestMemConversions(ctx, nrVcpus: 1, nrMemslots: 2);

    [ConformanceCase("x86/private_mem_conversions_test.c test_mem_conversions (-n 4 -m 2: 4 vCPUs, 2 memslots, anonymous): two vCPUs per slot, four converting concurrently",
        Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_mem_conversions_4_vcpus_2_memslots(CaseContext ctx) => TestMemConversions(ctx, nrVcpus: 4, nrMemslots: 2);

    /// <summary>
    /// test_mem_conversions(src_type = anonymous, nr_vcpus, nr_memslots): vCPU i converts its chunk at
    /// BASE_DATA_GPA + i * per_cpu_size on its own thread; the memslots split the guest_memfd (one file) evenly.
    /// </summary>
    private static void TestMemConversions(CaseContext ctx, int nrVcpus, int nrMemslots)
    {
        // "Allocate enough memory so that each vCPU's chunk of memory can be naturally aligned with respect to the
        // size of the backing store": anonymous memory, so max(SZ_2M, 4 KiB).
        const ulong alignment = Sz2M;
        const ulong perCpuSize = (PerCpuDataSize + alignment - 1) & ~(alignment - 1);
        ulong memfdSize = perCpuSize * (ulong)nrVcpus;
        ulong slotSize = memfdSize / (ulong)nrMemslots;
        Assert.True(slotSize * (ulong)nrMemslots == memfdSize,
            $"The memfd size (0x{memfdSize:X}) needs to be cleanly divisible by the number of memslots ({nrMemslots})");
        // The per-vCPU stacks below come from the micro-VM's 128 KiB stack area (the guest uses none, upstream gives each its own).
        Assert.InRange(nrVcpus, 1, 4);

        using var kvm = ctx.OpenKvm();
        RequireSwProtectedVm(kvm);
        GuestWriter? writer = null;
        // __vm_create_with_vcpus(shape, nr_vcpus, 0, guest_code, vcpus): vCPU 0 comes with the VM, the others below.
        using var guest = LongModeGuest.Create(kvm, VmType.SwProtected, backing: null, a =>
        {
            writer = new GuestWriter(a);
            writer.Prologue();
            // Run the conversion test twice, with and without fallocate(); the PUNCH_HOLE test twice too.
            writer.ExplicitConversion(doFallocate: false);
            writer.ExplicitConversion(doFallocate: true);
            writer.PunchHole(precise: false);
            writer.PunchHole(precise: true);
            a.hlt(); // GUEST_DONE
        }, BaseDataGpa);
        var vm = guest.Vm;
        var vcpus = new Vcpu[nrVcpus];
        vcpus[0] = guest.Vcpu;
        var shared = new List<AnonymousMemory>();
        var slots = new List<MemorySlot>();
        GuestMemfd? memfd = null;
        bool finished = false;
        try
        {
            for (int i = 1; i < nrVcpus; i++)
            {
                vcpus[i] = vm.CreateVcpu(i);
                var sregs = vcpus[i].GetSregs();
                LongMode.Apply(ref sregs);
                vcpus[i].SetSregs(sregs);
            }
            vm.EnableHypercallExits(HypercallExits.MapGpaRange);
            memfd = vm.CreateGuestMemfd(memfdSize);
            for (int i = 0; i < nrMemslots; i++)
            {
                // vm_mem_add(vm, src_type, BASE_DATA_GPA + slot_size * i, BASE_DATA_SLOT + i, ..., memfd, slot_size * i):
                // each slot has its own anonymous userspace_addr, all share the one guest_memfd.
                shared.Add(vm.AllocateMemory(slotSize));
                slots.Add(vm.AddPrivateMemorySlot(BaseDataSlot + (uint)i, BaseDataGpa + slotSize * (ulong)i, slotSize,
                    shared[i], memfd, privateOffset: slotSize * (ulong)i));
            }
            for (int i = 0; i < nrVcpus; i++)
            {
                ulong gpa = BaseDataGpa + (ulong)i * perCpuSize;
                // vcpu_args_set(vcpus[i], 1, gpa), each vCPU on its own stack.
                vcpus[i].SetRegs(LongMode.EntryRegs(LongModeGuest.CodeGpa, Layout.StackTop - (ulong)i * 0x8000 - 8, [gpa]));
                // virt_map only what is needed, so an out-of-bounds access is #PF => SHUTDOWN, not data corruption.
                for (ulong page = gpa; page < gpa + PerCpuDataSize; page += Ps) guest.IdentityMap(page);
            }
            var host = new ConversionHost(vm, memfd, slotSize, shared, writer!.Checks);
            host.RunConcurrently(vcpus);
            finished = true;
        }
        finally
        {
            for (int i = 1; i < nrVcpus; i++) vcpus[i]?.Dispose();
            foreach (var slot in slots) slot.Dispose();
            foreach (var memory in shared) memory.Dispose();
            if (!finished) memfd?.Dispose();
        }

        // Allocate and free memory from the guest_memfd after the VM is gone: the file keeps its VM alive.
        guest.Dispose();
        using (memfd)
        {
            memfd!.PunchHole(0, (long)memfdSize);
            memfd.Allocate(0, (long)memfdSize);
        }
    }

    /// <summary>The host side: __test_mem_conversions on one thread per vCPU, started together (run_vcpus).</summary>
    private sealed class ConversionHost(Vm vm, GuestMemfd memfd, ulong slotSize, List<AnonymousMemory> shared, List<string> checks)
    {
        /// <summary>A guest that finishes takes about a second; only a hung one reaches this.</summary>
        private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

        private readonly ConcurrentQueue<(int Vcpu, Exception Error)> _failures = new();
        private volatile bool _stop;

        public void RunConcurrently(Vcpu[] vcpus)
        {
            using var runVcpus = new ManualResetEventSlim();
            var threads = new Thread[vcpus.Length];
            for (int i = 0; i < vcpus.Length; i++)
            {
                var vcpu = vcpus[i];
                threads[i] = new Thread(() =>
                {
                    runVcpus.Wait();
                    try
                    {
                        RunVcpu(vcpu);
                    }
                    catch (Exception e)
                    {
                        // Upstream's TEST_ASSERT ends the whole process; here the other vCPUs are stopped.
                        _failures.Enqueue((vcpu.Id, e));
                        StopAll(vcpus);
                    }
                })
                { IsBackground = true, Name = $"vcpu {i}" };
                threads[i].Start();
            }
            runVcpus.Set();
            var deadline = DateTime.UtcNow + Limit;
            bool timedOut = false;
            foreach (var thread in threads)
            {
                var left = deadline - DateTime.UtcNow;
                if (thread.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero)) continue;
                timedOut = true;
                StopAll(vcpus);
                thread.Join();
            }
            if (_failures.TryDequeue(out var failure))
                throw new InvalidOperationException($"vCPU {failure.Vcpu}: {failure.Error.GetType().Name}: {failure.Error.Message}", failure.Error);
            Assert.False(timedOut, $"the vCPUs did not finish within {Limit.TotalSeconds} s");
        }

        private void StopAll(Vcpu[] vcpus)
        {
            _stop = true;
            foreach (var vcpu in vcpus) vcpu.Kick();
        }

        private void RunVcpu(Vcpu vcpu)
        {
            for (int exits = 0; ; exits++)
            {
                Assert.True(exits < 100_000, "the guest did not finish within 100 000 exits");
                var exit = vcpu.Run();
                if (exit.Interrupted)
                {
                    // Only StopAll kicks: another vCPU failed, or the time is up.
                    Assert.True(_stop, "KVM_RUN was interrupted without a kick");
                    return;
                }
                if (exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL)
                {
                    // handle_exit_hypercall
                    Assert.Equal(KvmPara.KVM_HC_MAP_GPA_RANGE, exit.HypercallNr);
                    var args = exit.HypercallArgs;
                    ulong gpa = args[0], size = args[1] * Ps, flags = args[2];
                    bool mapShared = (flags & MapGpaShared) != 0;
                    if ((flags & MapGpaDoFallocate) != 0) GuestMemFallocate(gpa, size, punchHole: mapShared);
                    if ((flags & MapGpaSetAttributes) != 0)
                        vm.SetMemoryAttributes(gpa, size, mapShared ? 0 : KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
                    exit.HypercallReturn = 0;
                    continue;
                }
                if (exit.Reason == KvmExitReason.KVM_EXIT_HLT) return; // UCALL_DONE
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"Wanted KVM_EXIT_IO, got {exit.ToString()}");
                ushort port = exit.IoPort;
                var regs = vcpu.GetRegs();
                if (port == AbortPort)
                    Assert.Fail($"guest assertion: {checks[(int)regs.rsi]}; first mismatch at 0x{regs.rdi - 1:X}");
                Assert.Equal(SyncPort, port);
                // UCALL_SYNC: in all cases the host sees the shared data; for SYNC_SHARED it writes the new pattern.
                ulong cmd = regs.rdi, syncGpa = regs.rsi, syncSize = regs.rdx;
                byte current = (byte)regs.rcx, next = (byte)regs.r8;
                Assert.True(cmd is SyncShared or SyncPrivate, $"Unknown sync command '{cmd}'");
                for (ulong i = 0; i < syncSize; i += Ps)
                {
                    int nrBytes = (int)Math.Min(Ps, syncSize - i);
                    var hva = AddrGpa2Hva(syncGpa + i, nrBytes);
                    int bad = hva.IndexOfAnyExcept(current);
                    Assert.True(bad < 0, $"Host expected 0x{current:X} at gpa 0x{syncGpa + i + (ulong)Math.Max(bad, 0):X}, got 0x{(bad < 0 ? 0 : hva[bad]):X}");
                    if (cmd == SyncShared) hva.Fill(next);
                }
            }
        }

        /// <summary>addr_gpa2hva: the bytes at <paramref name="gpa"/> in the userspace_addr of the slot holding it.</summary>
        private Span<byte> AddrGpa2Hva(ulong gpa, int length)
        {
            ulong offset = gpa - BaseDataGpa;
            int slot = (int)(offset / slotSize);
            return shared[slot].GetSpan(offset - (ulong)slot * slotSize, length);
        }

        /// <summary>
        /// vm_guest_mem_fallocate(vm, base, size, punch_hole): fallocate(KEEP_SIZE [| PUNCH_HOLE]) on the guest_memfd of
        /// each memslot the range crosses, at guest_memfd_offset + (gpa - guest_phys_addr).
        /// </summary>
        private void GuestMemFallocate(ulong @base, ulong size, bool punchHole)
        {
            ulong end = @base + size;
            for (ulong gpa = @base, len; gpa < end; gpa += len)
            {
                ulong slot = (gpa - BaseDataGpa) / slotSize;
                ulong offset = gpa - (BaseDataGpa + slot * slotSize);
                long fdOffset = (long)(slot * slotSize + offset);
                len = Math.Min(end - gpa, slotSize - offset);
                if (punchHole) memfd.PunchHole(fdOffset, (long)len);
                else memfd.Allocate(fdOffset, (long)len);
            }
        }
    }
}
