// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// Port of test_guest_memfd_guest(): a one-page MMAP|INIT_SHARED guest_memfd bound as slot 1 at GPA 4 GiB with
/// userspace_addr = NULL and identity-mapped for the guest (virt_map); the host fills it with 0xaa through a mapping
/// and unmaps; a 64-bit guest (guest_code(mem, size)) checks every byte is 0xaa and writes 0xff (GUEST_DONE); the
/// host maps again and sees 0xff. Slot 0 (code, stack, page tables) is a guest_memfd mapped for userspace, as the
/// SDK default does. <see cref="RunRealMode"/> is an extra variant: the same flow through a real-mode data segment
/// at a GPA below 4 GiB, with paging off.
/// </summary>
internal static class GuestMemfdGuest
{
    /// <summary>Upstream's gpa: SZ_4G.</summary>
    private const ulong Gpa = 0x1_0000_0000;
    private const uint Slot = 1;
    private const ulong RealModeDataGpa = 0x20000;
    private const byte DonePort = 0x10;
    private const byte FailPort = 0x11;

    /// <summary>
    /// test_guest_memfd_guest; <paramref name="extraFlags"/> are ORed into the file's flags and must be supported by the
    /// default VM (the direct-map-removal series, [PATCH v12 14/16], adds GUEST_MEMFD_FLAG_NO_DIRECT_MAP).
    /// </summary>
    public static void Run(CaseContext ctx, GuestMemfdFlags extraFlags = GuestMemfdFlags.None)
    {
        RequireFlags(ctx);
        ulong size = (ulong)CaseContext.PageSize;
        using var kvm = ctx.OpenKvm();
        // guest_code(uint8_t *mem, uint64_t size): RDI = mem, RSI = size.
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            var check = a.CreateLabel();
            var fill = a.CreateLabel();
            var fail = a.CreateLabel();
            a.xor(ecx, ecx);
            a.Label(ref check);
            a.cmp(__byte_ptr[rdi + rcx], 0xaa);
            a.jne(fail);
            a.inc(rcx);
            a.cmp(rcx, rsi);
            a.jb(check);
            a.xor(ecx, ecx);
            a.Label(ref fill);
            a.mov(__byte_ptr[rdi + rcx], 0xff);
            a.inc(rcx);
            a.cmp(rcx, rsi);
            a.jb(fill);
            a.@out(DonePort, al);
            a.hlt();
            a.Label(ref fail);
            a.mov(eax, ecx);
            a.@out(FailPort, eax);
            a.hlt();
        }, Gpa, size);
        var vm = guest.Vm;
        AssertFlags(vm, extraFlags);

        using var gmem = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared | extraFlags);
        using var slot = vm.AddGuestMemfdSlot(Slot, Gpa, size, gmem, mapForUserspace: false);
        Assert.Null(slot.Mapping);
        guest.IdentityMap(Gpa);
        using (var mem = gmem.Map())
        {
            mem.Fill(0, size, 0xaa);
        }

        var exit = guest.Vcpu.Run();
        if (HostDeviations.KvmPvmGmemNeedsUserspaceMapping(ctx.Target.IsReal))
        {
            // Host deviation: every guest access to the slot is a 1-byte MMIO exit at its GPA; the first is the
            // CMP's read of mem[0]. Serving the reads with the file's bytes lets guest_code reach GUEST_DONE, but its
            // writes come out as MMIO too and never reach the file: the host still sees 0xaa.
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO under the kvm_pvm deviation, got {exit.ToString()}");
            Assert.Equal(LongModeGuest.CodeGpa + 2, guest.Vcpu.GetRegs().rip);
            ulong reads = 0, writes = 0;
            using (var view = gmem.Map())
            {
                for (; exit.Reason == KvmExitReason.KVM_EXIT_MMIO; exit = guest.Vcpu.Run())
                {
                    ulong index = exit.MmioIsWrite ? writes++ : reads++;
                    Assert.Equal(Gpa + index, exit.MmioAddress);
                    Assert.Equal(1, exit.MmioData.Length);
                    if (exit.MmioIsWrite)
                        Assert.Equal(0xff, exit.MmioData[0]);
                    else
                        exit.MmioData[0] = view.Read<byte>(index);
                }
            }
            Assert.Equal((size, size), (reads, writes));
            AssertDone(exit);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
            using (var after = gmem.Map())
            {
                int notAa = after.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0xaa);
                Assert.True(notAa < 0, $"the guest's MMIO writes reached the file at offset {notAa}");
            }
            return;
        }
        AssertDone(exit);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        AssertHostSeesFf(gmem, size);
    }

    /// <summary>
    /// Extra variant (not upstream): the same flow with a real-mode guest whose data segment is a gmem-only slot at
    /// <see cref="RealModeDataGpa"/> (code in a separate gmem slot mapped for userspace): no guest paging, a GPA
    /// below 4 GiB.
    /// </summary>
    public static void RunRealMode(CaseContext ctx)
    {
        RequireFlags(ctx);
        int size = CaseContext.PageSize;
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            var check = a.CreateLabel();
            var fill = a.CreateLabel();
            var fail = a.CreateLabel();
            a.mov(ax, (ushort)(RealModeDataGpa >> 4));
            a.mov(ds, ax);
            a.xor(si, si);
            a.Label(ref check);
            a.cmp(__byte_ptr[si], 0xaa);
            a.jne(fail);
            a.inc(si);
            a.cmp(si, (ushort)size);
            a.jb(check);
            a.xor(si, si);
            a.Label(ref fill);
            a.mov(__byte_ptr[si], 0xff);
            a.inc(si);
            a.cmp(si, (ushort)size);
            a.jb(fill);
            a.@out(DonePort, al);
            a.hlt();
            a.Label(ref fail);
            a.mov(ax, si);
            a.@out(FailPort, ax);
            a.hlt();
        });
        var vm = guest.Vm;
        AssertFlags(vm);

        using var gmem = vm.CreateGuestMemfd((ulong)size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = vm.AddGuestMemfdSlot(Slot, RealModeDataGpa, (ulong)size, gmem, mapForUserspace: false);
        using (var mem = gmem.Map())
        {
            mem.Fill(0, (ulong)size, 0xaa);
        }

        var exit = guest.Vcpu.Run();
        if (HostDeviations.KvmPvmGmemNeedsUserspaceMapping(ctx.Target.IsReal))
        {
            // Host deviation: without a userspace mapping the data access is reported as MMIO.
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(RealModeDataGpa, exit.MmioAddress);
            return;
        }
        AssertDone(exit);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        AssertHostSeesFf(gmem, (ulong)size);
    }

    private static void RequireFlags(CaseContext ctx)
    {
        if (ctx.SystemCapability(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS) == 0)
            CaseContext.Skip("KVM_CAP_GUEST_MEMFD_FLAGS is 0 on /dev/kvm");
    }

    private static void AssertFlags(Vm vm, GuestMemfdFlags extraFlags = GuestMemfdFlags.None)
    {
        var flags = vm.SupportedGuestMemfdFlags;
        Assert.True((flags & extraFlags) == extraFlags, $"Default VM type should support {extraFlags.ToKernelString()}, supported flags = {flags.ToKernelString()}");
        Assert.True(flags.HasFlag(GuestMemfdFlags.Mmap), $"Default VM type should support MMAP, supported flags = {flags.ToKernelString()}");
        Assert.True(flags.HasFlag(GuestMemfdFlags.InitShared), $"Default VM type should support INIT_SHARED, supported flags = {flags.ToKernelString()}");
    }

    private static void AssertDone(VcpuExit exit)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected the guest's done port, got {exit.ToString()}");
        if (exit.IoPort == FailPort)
        {
            uint offset = 0;
            for (int i = 0; i < exit.IoData.Length; i++) offset |= (uint)exit.IoData[i] << (8 * i);
            Assert.Fail($"Guest expected 0xaa at offset {offset}");
        }
        Assert.Equal(DonePort, exit.IoPort);
    }

    private static void AssertHostSeesFf(GuestMemfd gmem, ulong size)
    {
        using var after = gmem.Map();
        int bad = after.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0xff);
        Assert.True(bad < 0, $"host sees 0x{(bad < 0 ? 0 : after.GetSpan((ulong)bad, 1)[0]):X2} at offset {bad}, expected 0xff");
    }
}
