// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A vCPU and the host share guest memory; exits are decoded in place (KVM_RUN, kvm_run). The guest_memfd cases need
/// guest_memfd; the KVM_RUN cases run in whatever memory the kernel offers (<see cref="RealModeGuest"/>).
/// </summary>
public static class GuestAccess
{
    private const byte ReportPort = 0x10;
    private const ushort DataOffset = 0x1000;

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_get_pfn: guest and host mapping share the folio", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void guest_reads_what_the_host_wrote_and_the_host_sees_what_the_guest_wrote(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            a.mov(al, __byte_ptr[DataOffset]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[DataOffset + 1], 0xff);
            a.hlt();
        }, backing: GuestMemoryBacking.GuestMemfd);
        using var host = guest.Memfd!.Map();
        host.Write<byte>(DataOffset, 0xaa);

        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.True(exit.IoIsOut);
        Assert.Equal(ReportPort, exit.IoPort);
        Assert.Equal(1, exit.IoSize);
        Assert.Equal(0xaa, exit.IoData[0]);

        exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Equal(0xff, host.Read<byte>(DataOffset + 1));
        Assert.Equal(0xff, guest.Slot.Mapping!.Read<byte>(DataOffset + 1));
    }

    [ConformanceCase("Documentation/virt/kvm/api.rst KVM_EXIT_IO: data at data_offset, IN answered before the next KVM_RUN")]
    public static void port_in_is_answered_through_the_exit_data(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            a.@in(al, ReportPort);
            a.mov(__byte_ptr[DataOffset], al);
            a.hlt();
        });
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.False(exit.IoIsOut);
        exit.IoData[0] = 0x5a;
        exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Equal(0x5a, guest.Read<byte>(DataOffset));
    }

    [ConformanceCase("Documentation/virt/kvm/api.rst kvm_run.immediate_exit: KVM_RUN returns EINTR")]
    public static void immediate_exit_returns_interrupted_without_running_the_guest(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a => a.hlt());
        guest.Vcpu.ImmediateExit = true;
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Interrupted);
        guest.Vcpu.ImmediateExit = false;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    [ConformanceCase("Documentation/virt/kvm/api.rst KVM_RUN: a pending signal -> EINTR")]
    public static void kick_from_another_thread_stops_an_endless_guest(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.jmp(loop);
        });
        var vcpu = guest.Vcpu;
        using var kicker = new Timer(_ => vcpu.Kick(), null, 100, Timeout.Infinite);
        bool interrupted = vcpu.Run().Interrupted;
        Assert.True(interrupted);
        Assert.True(vcpu.ImmediateExit);
    }

    [ConformanceCase("virt/kvm/kvm_main.c KVM_MEMSLOT_GMEM_ONLY: a mappable gmem slot serves guest faults from the file", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void a_slot_without_a_userspace_mapping_serves_the_guest_from_the_file(CaseContext ctx)
    {
        // Upstream test_guest_memfd_guest binds with userspace_addr = NULL: a mappable gmem makes the slot
        // gmem-only (KVM_MEMSLOT_GMEM_ONLY), so guest reads and writes go to the file.
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            a.mov(al, __byte_ptr[DataOffset]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[DataOffset + 1], 0xff);
            a.hlt();
        }, mapForUserspace: false, backing: GuestMemoryBacking.GuestMemfd);
        Assert.Null(guest.Slot.Mapping);
        using var host = guest.Memfd!.Map();
        host.Write<byte>(DataOffset, 0xaa);

        var exit = guest.Vcpu.Run();
        if (HostDeviations.KvmPvmGmemNeedsUserspaceMapping(ctx.Target.IsReal))
        {
            // The code itself lives in the gmem slot: the fetch cannot be served.
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.Equal(0xaa, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0xff, host.Read<byte>(DataOffset + 1));
    }
}
