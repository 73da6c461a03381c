// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// Port of test_guest_memfd_guest(): a one-page MMAP|INIT_SHARED guest_memfd bound with userspace_addr = NULL;
/// the host fills it with 0xaa through a mapping and unmaps; the guest checks every byte is 0xaa and writes 0xff;
/// the host maps again and sees 0xff. Upstream uses a 64-bit guest at GPA 4 GiB; this port uses a real-mode
/// guest whose data segment is the gmem page (code in a separate gmem slot), which exercises the same path.
/// </summary>
internal static class GuestMemfdGuest
{
    private const ulong DataGpa = 0x20000;
    private const byte DonePort = 0x10;
    private const byte FailPort = 0x11;

    public static void Run(CaseContext ctx)
    {
        if (ctx.SystemCapability(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS) == 0)
            CaseContext.Skip("KVM_CAP_GUEST_MEMFD_FLAGS is 0 on /dev/kvm");
        int size = CaseContext.PageSize;
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            var check = a.CreateLabel();
            var fill = a.CreateLabel();
            var fail = a.CreateLabel();
            a.mov(ax, (ushort)(DataGpa >> 4));
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
        var flags = vm.SupportedGuestMemfdFlags;
        Assert.True(flags.HasFlag(GuestMemfdFlags.Mmap), $"Default VM type should support MMAP, supported flags = {flags.ToKernelString()}");
        Assert.True(flags.HasFlag(GuestMemfdFlags.InitShared), $"Default VM type should support INIT_SHARED, supported flags = {flags.ToKernelString()}");

        using var gmem = vm.CreateGuestMemfd((ulong)size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = vm.AddGuestMemfdSlot(1, DataGpa, (ulong)size, gmem, mapForUserspace: false);
        using (var mem = gmem.Map())
        {
            mem.Fill(0, (ulong)size, 0xaa);
        }

        var exit = guest.Vcpu.Run();
        if (HostDeviations.KvmPvmGmemNeedsUserspaceMapping(ctx.Target.IsReal))
        {
            // Host deviation: without a userspace mapping the data access is reported as MMIO.
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(DataGpa, exit.MmioAddress);
            return;
        }
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected the guest's done port, got {exit.ToString()}");
        if (exit.IoPort == FailPort)
            Assert.Fail($"Guest expected 0xaa at offset {BitConverter.ToUInt16(exit.IoData)}");
        Assert.Equal(DonePort, exit.IoPort);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);

        using var after = gmem.Map();
        int bad = after.GetSpan(0, size).IndexOfAnyExcept((byte)0xff);
        Assert.True(bad < 0, $"host sees 0x{(bad < 0 ? 0 : after.GetSpan((ulong)bad, 1)[0]):X2} at offset {bad}, expected 0xff");
    }
}
