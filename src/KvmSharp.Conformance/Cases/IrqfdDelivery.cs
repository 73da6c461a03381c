// SPDX-License-Identifier: MIT
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What signalling an irqfd does (virt/kvm/eventfd.c irqfd_wakeup / irqfd_inject): the eventfd's count is consumed and
/// the GSI raised through its routes, here an MSI route to a software-enabled APIC (whose vector lands in IRR). Runs
/// on both kernels (probed on kvm_pvm first).
/// </summary>
public static class IrqfdDelivery
{
    private const string EventfdC = "virt/kvm/eventfd.c";
    private const byte Vector = 0x40;
    private const uint MsiGsi = 100, UnroutedGsi = 200;

    [ConformanceCase(EventfdC + " irqfd_wakeup (EPOLLIN: eventfd_ctx_do_read, then kvm_arch_set_irq_inatomic / irqfd_inject) and kvm_irqfd_assign " +
                     "(a count already there is injected and left in the eventfd): a write to an irqfd's eventfd is consumed and raises the GSI — an MSI " +
                     "route's vector lands in the APIC's IRR; a GSI without a route consumes the write as well; after deassignment the count stays")]
    public static void irqfd_signal_consumes_the_count_and_raises_the_gsi(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var vcpu = vm.CreateVcpu(0);
        ApicMessages.SetLapic(vcpu, l => l.Svr = 0x1ff);
        vm.SetGsiRouting([GsiRoute.ToMsi(MsiGsi, 0xfee0_0000, Vector)]);
        using var msi = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using (var registration = vm.AssignIrqFd(msi, MsiGsi))
        {
            Assert.False(vcpu.GetLapic().IsRequested(Vector), "IRR before any signal");
            msi.Signal();
            Assert.False(msi.TryRead(out ulong left), $"the irqfd left {left} in the eventfd");
            Assert.True(vcpu.GetLapic().IsRequested(Vector), $"vector 0x{Vector:X2} is not in IRR after the irqfd was signalled");
        }
        // Deassigned: the eventfd is a plain eventfd again.
        msi.Signal();
        Assert.True(msi.TryRead(out ulong count) && count == 1, "a deassigned irqfd's eventfd keeps its count");

        using var unrouted = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using (vm.AssignIrqFd(unrouted, UnroutedGsi))
        {
            unrouted.Add(3);
            Assert.False(unrouted.TryRead(out ulong stray), $"an irqfd on a GSI without routes left {stray}");
        }

        // A count written before the assignment is injected (asynchronously on the real kernel) and stays readable.
        using var early = kvm.CreateEventFd(initialValue: 2, options: EventFdOptions.NonBlocking);
        using (vm.AssignIrqFd(early, MsiGsi))
        {
            Assert.True(early.TryRead(out ulong kept) && kept == 2, "the count present at assignment is not consumed");
        }
    }
}
