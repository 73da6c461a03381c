// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>Every way a guest can end is a typed outcome with the guest's RIP; none hangs or crashes the host.</summary>
public sealed class OutcomeTests
{
    [KvmFact]
    public void Hello_prints_its_greeting_and_exits_with_status_0()
    {
        var r = GuestRun.Run(Hello.Image());
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(0, r.Status);
        Assert.Null(r.Value); // it called exit, it did not return
        Assert.Equal(Hello.Greeting, r.Console);
        Assert.True(r.IsSuccess);
        Assert.InRange(r.Rip, Layout.ImageBase, Layout.ImageBase + 0x100);
    }

    [KvmFact]
    public void Exit_port_status_is_reported()
    {
        var r = GuestRun.Run(Misbehaving.Exit42Image());
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(42, r.Status);
        Assert.False(r.IsSuccess);
    }

    [KvmFact]
    public void Unknown_port_names_the_port_and_the_instruction()
    {
        var image = Misbehaving.BadPortImage();
        var r = GuestRun.Run(image);
        Assert.Equal(GuestOutcome.UnknownPort, r.Outcome);
        Assert.Equal(Misbehaving.BadPort, r.Port);
        Assert.Contains("0x1234", r.Detail, StringComparison.Ordinal);
        // mov al, imm8 (2 bytes) + mov dx, imm16 (4 bytes): the OUT (1 byte) is at +6. Upstream KVM reports the OUT
        // itself; kvm_pvm has already stepped past it (+7).
        Assert.InRange(r.Rip, image.Entry + 6, image.Entry + 7);
    }

    [KvmFact]
    public void Triple_fault_is_shutdown_at_the_faulting_instruction()
    {
        // The guest replaced the VMM's IDT with an empty one: #UD cannot be delivered, nor #GP, nor #DF.
        var image = Misbehaving.TripleFaultImage();
        var r = GuestRun.Run(image);
        Assert.Equal(GuestOutcome.Shutdown, r.Outcome);
        Assert.Equal(image.Resolve(Misbehaving.FaultSymbol), r.Rip);
        Assert.Null(r.Exception);
    }

    [KvmFact]
    public void Null_pointer_write_faults_because_page_0_is_not_mapped()
    {
        var r = GuestRun.Run(Misbehaving.NullWriteImage());
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal((14, 0x2UL, 0x0UL), (r.Exception!.Vector, r.Exception.ErrorCode, r.Exception.Cr2));
    }

    [KvmFact]
    public void Hlt_with_interrupts_off_is_halt()
    {
        var r = GuestRun.Run(Misbehaving.HaltImage());
        Assert.Equal(GuestOutcome.Halt, r.Outcome);
    }

    [KvmFact]
    public void Jumping_to_memory_that_does_not_exist_is_an_internal_error()
    {
        var r = GuestRun.Run(Misbehaving.WildJumpImage());
        Assert.Equal(GuestOutcome.InternalError, r.Outcome);
        Assert.Equal(Layout.LargePageSize, r.Rip);
    }

    [KvmTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Endless_loop_is_stopped_by_the_timeout(bool interruptsOff)
    {
        var timeout = TimeSpan.FromMilliseconds(250);
        var image = interruptsOff ? Misbehaving.EndlessLoopNoInterruptsImage() : Misbehaving.EndlessLoopImage();
        var r = GuestRun.Run(image, GuestRun.Default with { Timeout = timeout });
        Assert.Equal(GuestOutcome.Timeout, r.Outcome);
        // The timer may fire a fraction of a millisecond early by the Stopwatch's clock.
        Assert.True(r.Elapsed >= timeout - TimeSpan.FromMilliseconds(10), $"stopped after {r.Elapsed}, before the {timeout} limit");
        // Generous for a noisy 2-core host; a hung guest would never come back at all.
        Assert.True(r.Elapsed < timeout + TimeSpan.FromSeconds(2), $"stopped only after {r.Elapsed}");
        // The RIP is inside the loop (a few bytes after the entry).
        Assert.InRange(r.Rip, image.Entry, image.Entry + 16);
    }

    [KvmFact]
    public void Max_exits_stops_a_guest_that_never_stops_printing()
    {
        var r = GuestRun.Run(Misbehaving.ChattyImage(), GuestRun.Default with { Timeout = Timeout.InfiniteTimeSpan, MaxExits = 500 });
        Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
        Assert.Equal(500, r.Exits);
        // Each exit was one console byte (the last exit's byte is written before the budget check of the next).
        Assert.Equal(new string('x', 500), r.Console);
    }

    [KvmFact]
    public void Console_capture_is_bounded_and_says_so()
    {
        var r = GuestRun.Run(Misbehaving.ChattyImage(), GuestRun.Default with { Timeout = Timeout.InfiniteTimeSpan, MaxExits = 300, ConsoleCapacity = 100 });
        Assert.Equal(100, r.Console.Length);
        Assert.True(r.ConsoleTruncated);
    }

    [KvmFact]
    public void Console_is_streamed_to_the_sink_as_well()
    {
        using var sink = new MemoryStream();
        var r = GuestRun.Run(Hello.Image(), GuestRun.Default with { ConsoleSink = sink });
        Assert.Equal(Hello.Greeting, System.Text.Encoding.UTF8.GetString(sink.ToArray()));
        Assert.Equal(Hello.Greeting, r.Console);
    }

    [KvmFact]
    public void A_faulted_vm_refuses_calls_until_reset_and_then_runs_again()
    {
        using var vm = MicroVm.Create(Misbehaving.TripleFaultImage(), GuestRun.Quick);
        Assert.Equal(GuestOutcome.Shutdown, vm.Run().Outcome);
        Assert.True(vm.IsFaulted);
        Assert.Throws<MicroVmException>(() => vm.Run());
        for (int i = 0; i < 3; i++)
        {
            vm.Reset();
            Assert.False(vm.IsFaulted);
            Assert.Equal(GuestOutcome.Shutdown, vm.Run().Outcome);
        }
    }

    [KvmFact]
    public void Mmio_write_to_a_guest_physical_address_without_memory_is_unhandled_mmio()
    {
        var image = Misbehaving.MmioWriteImage();
        var r = GuestRun.Run(image);
        Assert.Equal(GuestOutcome.UnhandledMmio, r.Outcome);
        Assert.Contains($"MMIO write at 0x{Misbehaving.UnbackedAddress + 0x10:X}", r.Detail, StringComparison.Ordinal);
        Assert.InRange(r.Rip, image.Entry, image.Entry + 0x40);
    }

    [KvmFact]
    public void Mmio_read_from_a_guest_physical_address_without_memory_is_unhandled_mmio()
    {
        var r = GuestRun.Run(Misbehaving.MmioReadImage());
        Assert.Equal(GuestOutcome.UnhandledMmio, r.Outcome);
        Assert.Contains($"MMIO read at 0x{Misbehaving.UnbackedAddress + 0x10:X}", r.Detail, StringComparison.Ordinal);
    }

    [KvmFact]
    public void Inconsistent_control_registers_are_refused_by_KVM_SET_SREGS_not_at_entry()
    {
        // KVM's own kvm_is_valid_sregs (any vendor, kvm_pvm included): paging without protection is EINVAL.
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var sregs = vm.Vcpu.GetSregs();
        sregs.cr0 &= ~LongMode.CR0_PE;
        var e = Assert.Throws<KvmException>(() => vm.Vcpu.SetSregs(sregs));
        Assert.Equal("EINVAL", e.ErrnoName);
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value); // the refused state never reached the vCPU
    }

    [KvmFact]
    public void A_code_segment_the_cpu_would_refuse_ends_in_a_typed_outcome()
    {
        // A data segment in CS. VMX (unrestricted guest) refuses the VM entry: KVM_EXIT_FAIL_ENTRY with
        // hardware_entry_failure_reason 0x80000021 → FailEntry. kvm_pvm never reports FAIL_ENTRY: it runs guest
        // ring 0 in host ring 3 with segments of its own and ignores the descriptor attributes (type, S, P, DPL of
        // CS, L+D, an unusable TR all run normally); control-register inconsistencies are EINVAL at SET_SREGS (test
        // above) and SS.DPL = 3 is simply CPL 3 (a #PF on supervisor pages → Shutdown). See the benchmarks README.
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var sregs = vm.Vcpu.GetSregs();
        sregs.cs.type = 0x3; // read/write data, accessed
        vm.Vcpu.SetSregs(sregs);
        var r = vm.Call("add", 1, 2);
        if (KvmHost.IsKvmPvm)
        {
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(3UL, r.Value);
        }
        else
        {
            Assert.Contains(r.Outcome, new[] { GuestOutcome.FailEntry, GuestOutcome.InternalError, GuestOutcome.Shutdown, GuestOutcome.Exit });
            if (r.Outcome == GuestOutcome.FailEntry)
            {
                Assert.Contains("hardware_entry_failure_reason=0x", r.Detail, StringComparison.Ordinal);
                Assert.True(vm.IsFaulted);
            }
        }
    }

    [KvmFact]
    public void Reset_after_a_fault_runs_the_guest_from_scratch()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        Assert.Equal(GuestOutcome.Exit, vm.Call("add", 1, 2).Outcome);
        // Make the next call fault: call an address in the (unmapped) null page. The fetch faults (#PF, CR2 = the
        // address; without EFER.NXE the CPU sets no I/D bit, SDM Vol. 3A 4.7).
        var r = vm.CallAddress(0x10);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal((14, 0x0UL, 0x10UL, 0x10UL), (r.Exception!.Vector, r.Exception.ErrorCode, r.Exception.Cr2, r.Rip));
        vm.Reset();
        Assert.Equal(7UL, vm.Call("add", 3, 4).Value);
    }

    [Fact]
    public void The_return_trampoline_is_assembled_for_its_address()
    {
        // mov rdi, imm64 ; mov [rdi], rax ; mov dx, imm16 ; out dx, al ; hlt
        Assert.Equal(10 + 3 + 4 + 1 + 1, Arch.X86_64.Trampoline.Bytes.Length);
        Assert.Equal(CallRegion.Address(CallRegion.Result), BitConverter.ToUInt64(Arch.X86_64.Trampoline.Bytes[2..10]));
    }
}
