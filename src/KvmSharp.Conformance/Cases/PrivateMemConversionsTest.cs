// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// tools/testing/selftests/kvm/x86/private_mem_conversions_test.c (torvalds/linux, "Copyright (C) 2022, Google LLC"),
/// with its defaults (one vCPU, one memslot, anonymous memory): a KVM_X86_SW_PROTECTED_VM guest converts ranges of its
/// data between shared and private with KVM_HC_MAP_GPA_RANGE; the host answers each hypercall with
/// KVM_SET_MEMORY_ATTRIBUTES (and fallocate on the guest_memfd when asked) and, at each sync, checks that it always
/// sees the shared data and writes new shared patterns. Then PUNCH_HOLE must free private memory: reads after a
/// punch are zero. The guest is generated per range of test_ranges[] (the upstream loops unrolled); memset is
/// REP STOSB and memcmp_g is REPE SCASB (a mismatch reports the check and address, upstream's GUEST_ASSERT).
/// </summary>
public static class PrivateMemConversionsTest
{
    private const uint BaseDataSlot = 10;
    private const ulong BaseDataGpa = 1UL << 32;
    private const ulong Ps = 4096, Sz2M = 2UL << 20;
    private const ulong PerCpuDataSize = Sz2M + Ps;
    /// <summary>per_cpu_size = align_up(PER_CPU_DATA_SIZE, SZ_2M); with one vCPU also the guest_memfd's size.</summary>
    private const ulong MemfdSize = 2 * Sz2M;

    private const byte SyncPort = 0x10, AbortPort = 0x11;
    private const int SyncShared = 0, SyncPrivate = 1;

    // Arbitrary values, KVM doesn't care about the attribute flags.
    private const ulong MapGpaSetAttributes = 1 << 0, MapGpaShared = 1 << 1, MapGpaDoFallocate = 1 << 2;

    private static readonly (ulong Offset, ulong Size)[] TestRanges =
    [
        (0, Ps), (0, Sz2M), (Ps, Ps), (Ps, Sz2M), (Sz2M, Ps),
    ];

    /// <summary>Emits the guest: guest_code(base_gpa) with its helpers inlined.</summary>
    private sealed class GuestWriter(Assembler a)
    {
        private int _checks;

        public List<string> Checks { get; } = [];

        public void Memset(ulong gpa, byte pattern, ulong size)
        {
            a.mov(rdi, (long)gpa);
            a.mov(al, pattern);
            a.mov(rcx, (long)size);
            a.rep.stosb();
        }

        /// <summary>memcmp_g: every byte of [gpa, +size) is <paramref name="pattern"/>, else GUEST_ASSERT fails.</summary>
        public void MemcmpG(ulong gpa, byte pattern, ulong size, string what)
        {
            var ok = a.CreateLabel();
            a.mov(rdi, (long)gpa);
            a.mov(al, pattern);
            a.mov(rcx, (long)size);
            a.repe.scasb();
            a.je(ok);
            a.mov(esi, _checks++);
            a.@out(AbortPort, al);
            a.hlt();
            a.Label(ref ok);
            Checks.Add($"{what}: guest expected 0x{pattern:X2} in [0x{gpa:X}, +0x{size:X})");
        }

        /// <summary>GUEST_SYNC5(cmd, gpa, size, current_pattern, new_pattern).</summary>
        public void Sync(int cmd, ulong gpa, ulong size, byte current, byte next = 0)
        {
            a.mov(edi, cmd);
            a.mov(rsi, (long)gpa);
            a.mov(rdx, (long)size);
            a.mov(ecx, current);
            a.mov(r8d, next);
            a.@out(SyncPort, al);
        }

        /// <summary>kvm_hypercall_map_gpa_range(gpa, size, flags): RAX = 12, RBX = gpa, RCX = pages, RDX = flags.</summary>
        public void MapGpaRange(ulong gpa, ulong size, ulong flags)
        {
            a.mov(eax, (int)KvmPara.KVM_HC_MAP_GPA_RANGE);
            a.mov(rbx, (long)gpa);
            a.mov(rcx, (long)(size / Ps));
            a.mov(rdx, (long)flags);
            a.vmcall();
        }

        public void MapMem(ulong gpa, ulong size, bool shared, bool fallocate) =>
            MapGpaRange(gpa, size, MapGpaSetAttributes | (shared ? MapGpaShared : 0) | (fallocate ? MapGpaDoFallocate : 0));

        /// <summary>guest_test_explicit_conversion(base_gpa, do_fallocate).</summary>
        public void ExplicitConversion(ulong baseGpa, bool doFallocate)
        {
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

        /// <summary>guest_test_punch_hole(base_gpa, precise).</summary>
        public void PunchHole(ulong baseGpa, bool precise)
        {
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
    public static void test_mem_conversions(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireSwProtectedVm(kvm);
        GuestWriter? writer = null;
        using var guest = LongModeGuest.Create(kvm, VmType.SwProtected, backing: null, a =>
        {
            writer = new GuestWriter(a);
            // Run the conversion test twice, with and without fallocate(); the PUNCH_HOLE test twice too.
            writer.ExplicitConversion(BaseDataGpa, doFallocate: false);
            writer.ExplicitConversion(BaseDataGpa, doFallocate: true);
            writer.PunchHole(BaseDataGpa, precise: false);
            writer.PunchHole(BaseDataGpa, precise: true);
            a.hlt(); // GUEST_DONE
        });
        var vm = guest.Vm;
        vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        using var shared = vm.AllocateMemory(MemfdSize);
        using var memfd = vm.CreateGuestMemfd(MemfdSize);
        using (var slot = vm.AddPrivateMemorySlot(BaseDataSlot, BaseDataGpa, MemfdSize, shared, memfd))
        {
            // virt_map only what is needed, so an out-of-bounds access is #PF => SHUTDOWN, not data corruption.
            for (ulong gpa = BaseDataGpa; gpa < BaseDataGpa + PerCpuDataSize; gpa += Ps) guest.IdentityMap(gpa);
            RunToDone(guest, shared, memfd, writer!.Checks);
        }

        // Allocate and free memory from the guest_memfd after the VM is gone: the file keeps its VM alive.
        guest.Dispose();
        memfd.PunchHole(0, (long)MemfdSize);
        memfd.Allocate(0, (long)MemfdSize);
    }

    private static void RunToDone(LongModeGuest guest, AnonymousMemory shared, GuestMemfd memfd, List<string> checks)
    {
        var vm = guest.Vm;
        for (int exits = 0; ; exits++)
        {
            Assert.True(exits < 100_000, "the guest did not finish within 100 000 exits");
            var exit = guest.Vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL)
            {
                // handle_exit_hypercall
                Assert.Equal(KvmPara.KVM_HC_MAP_GPA_RANGE, exit.HypercallNr);
                var args = exit.HypercallArgs;
                ulong gpa = args[0], size = args[1] * Ps, flags = args[2];
                bool mapShared = (flags & MapGpaShared) != 0;
                if ((flags & MapGpaDoFallocate) != 0)
                {
                    // vm_guest_mem_fallocate: PUNCH_HOLE to make it shared, allocate to make it private.
                    long offset = (long)(gpa - BaseDataGpa);
                    if (mapShared) memfd.PunchHole(offset, (long)size);
                    else memfd.Allocate(offset, (long)size);
                }
                if ((flags & MapGpaSetAttributes) != 0)
                    vm.SetMemoryAttributes(gpa, size, mapShared ? 0 : KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
                exit.HypercallReturn = 0;
                continue;
            }
            if (exit.Reason == KvmExitReason.KVM_EXIT_HLT) return;
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"Wanted KVM_EXIT_IO, got {exit.ToString()}");
            ushort port = exit.IoPort;
            var regs = guest.Vcpu.GetRegs();
            if (port == AbortPort)
                Assert.Fail($"guest assertion: {checks[(int)regs.rsi]}; first mismatch at 0x{regs.rdi - 1:X}");
            Assert.Equal(SyncPort, port);
            // UCALL_SYNC: in all cases the host sees the shared data; for SYNC_SHARED it writes the new pattern.
            ulong cmd = regs.rdi, syncGpa = regs.rsi, syncSize = regs.rdx;
            byte current = (byte)regs.rcx, next = (byte)regs.r8;
            Assert.True(cmd is SyncShared or SyncPrivate, $"Unknown sync command '{cmd}'");
            var span = shared.GetSpan(syncGpa - BaseDataGpa, (int)syncSize);
            int bad = span.IndexOfAnyExcept(current);
            Assert.True(bad < 0, $"Host expected 0x{current:X} at gpa 0x{syncGpa + (ulong)Math.Max(bad, 0):X}, got 0x{(bad < 0 ? 0 : span[bad]):X}");
            if (cmd == SyncShared) span.Fill(next);
        }
    }
}
