// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/eventfds.c: an ioeventfd signalled by the guest's port writes and watched with epoll, an irqfd KVM
/// consumes as soon as it is written, and an eventfd of the program's own. Through <c>kvmsharp exec</c> every eventfd
/// created once the bridge runs is the emulated kernel's (so KVM_IOEVENTFD and KVM_IRQFD take it) and its real
/// descriptor follows its counter, so poll and epoll answer as on the kernel.
/// </summary>
public sealed class EventFdsTests
{
    private static readonly CProgram Program = CProgram.Get("eventfds.c");

    // virt/kvm/eventfd.c: ioeventfd_write signals the eventfd instead of an exit; irqfd_wakeup reads the count
    // (eventfd_ctx_do_read) when the VMM writes, so the eventfd is not readable afterwards; fs/eventfd.c for the rest.
    private const string Expected = """
        KVM_CREATE_IRQCHIP: 0 
        slot: 0 
        KVM_IOEVENTFD(port 0x10): 0 
        epoll_ctl(ADD ioeventfd): 0 
        epoll_wait before the guest runs: 0
        KVM_RUN: 0  exit_reason=2 port=0x11
        epoll_wait after: 1 data=7
        read(ioeventfd): 8 count=2
        read(ioeventfd) again: -1 EAGAIN
        epoll_wait once read: 0
        KVM_IRQFD(gsi 5): 0 
        write(irqfd): 8; readable afterwards: 0
        KVM_IRQFD(deassign): 0 
        write(no irqfd): 8; readable afterwards: 1
        semaphore read: 8 count=1 readable=1

        """;

    [KvmTheory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void Ioeventfds_and_irqfds_work_and_poll_as_on_the_kernel(string kernel)
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", kernel], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(Expected.ReplaceLineEndings("\n"), run.Stdout);
    }
}
