// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// String port I/O on a plain micro-VM, on this machine's kvm_pvm and on the emulated kernel: REP OUTSB/OUTSW/OUTSD
/// and INSB/INSW reach the console through the run loop (one KVM_EXIT_IO may carry count &gt; 1 elements, each of the
/// exit's size), and what a console write costs in exits. KVM's instruction emulator hands OUTS to userspace one element
/// per exit (arch/x86/kvm/emulate.c em_out: "pio_out_emulated(…, 1)"), so on a plain micro-VM a 100-byte REP OUTSB
/// costs 100 exits like 100 OUTs — which is why the guest SDK's kvms_write keeps OUT per byte there and uses REP OUTSB
/// only in an SEV-SNP micro-VM, where the GHCB batches it (ConfidentialVcVeTests).
/// </summary>
public sealed class StringConsoleTests
{
    private static MicroVm Create(TestKernel k) => MicroVm.Create(StringIoGuest.Image(), k.Options(GuestMemoryBacking.HostMemory));

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_100_byte_rep_outsb_prints_and_costs_one_exit_per_byte_like_out(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k);
        var loop = vm.Call("putc_loop", 100);
        Assert.True(loop.IsSuccess, loop.ToString());
        Assert.Equal(StringIoGuest.Text[..100], loop.Console);
        Assert.Equal(101, loop.Exits);   // 100 OUTs and the return
        var rep = vm.Call("write", 100);
        Assert.True(rep.IsSuccess, rep.ToString());
        Assert.Equal(StringIoGuest.Text[..100], rep.Console);
        Assert.Equal(StringIoGuest.Packed(100, 0), rep.Value);
        Assert.Equal(101, rep.Exits);    // em_out: one KVM_EXIT_IO (count 1) per element, and the return
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_console_write_port_prints_a_whole_buffer_in_one_exit(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var sink = new MemoryStream();
        using var vm = MicroVm.Create(StringIoGuest.Image(), k.Options(GuestMemoryBacking.HostMemory) with { ConsoleSink = sink });
        var r = vm.Call("console_write", StringIoGuest.TextLength);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(StringIoGuest.Text, r.Console);
        Assert.Equal((ulong)StringIoGuest.TextLength, r.Value);   // console_len: every byte printed
        Assert.Equal(2, r.Exits);                                   // the console write and the return
        Assert.Equal(StringIoGuest.Text, System.Text.Encoding.ASCII.GetString(sink.ToArray()));
        Assert.Equal(CallRegion.FeatureConsoleWrite, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)));
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_console_write_of_a_range_the_host_may_not_read_prints_nothing_and_says_so(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k);
        ulong size = vm.Memory.Size;
        (ulong Ptr, ulong Len, string Why)[] refused =
        [
            (0, 16, "the null guard page"),
            (Layout.StackGuard + 8, 8, "the stack guard page"),
            (Layout.StackGuard - 4, 8, "a range ending on the stack guard page"),
            (size - 8, 16, "a range past the end of guest memory"),
            (size, 1, "the first byte past guest memory"),
            (ulong.MaxValue - 7, 16, "a range that wraps around"),
            (Layout.CallData, ulong.MaxValue, "a length larger than guest memory"),
        ];
        foreach (var (ptr, len, why) in refused)
        {
            var r = vm.Call("console_write_at", ptr, len);
            Assert.True(r.IsSuccess, $"{why}: {r}");
            Assert.True(r.Value == 0 && r.Console.Length == 0 && r.Exits == 2, $"{why}: printed {r.Value}, console '{r.Console}', {r.Exits} exits");
        }
        var none = vm.Call("console_write", 0);
        Assert.True(none.IsSuccess && none.Value == 0 && none.Console.Length == 0, none.ToString());
        // The guest goes on: the next write prints.
        Assert.Equal(StringIoGuest.Text[..10], vm.Call("console_write", 10).Console);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_console_write_beyond_the_console_capacity_keeps_the_first_bytes_and_marks_the_call_truncated(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(StringIoGuest.Image(), k.Options(GuestMemoryBacking.HostMemory) with { ConsoleCapacity = 100 });
        var r = vm.Call("console_write", 1000);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(1000UL, r.Value);
        Assert.Equal(StringIoGuest.Text[..100], r.Console);
        Assert.True(r.ConsoleTruncated);
        // COM1 after a full capture keeps nothing more either.
        var two = vm.Call("console_write", 60);
        Assert.Equal(StringIoGuest.Text[..60], two.Console);
        Assert.False(two.ConsoleTruncated);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Outs_of_each_size_direction_and_count_reach_the_console_as_the_instruction_moves_rsi_and_rcx(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k);
        StringIoGuest.AssertBackwardSingleAndEmptyOuts(vm);
        // THR prints the low byte of each wider element.
        var words = vm.Call("outsw", 4);
        Assert.Equal(StringIoGuest.Wide, words.Console);
        Assert.Equal(StringIoGuest.Packed(8, 0), words.Value);
        var dwords = vm.Call("outsd", 4);
        Assert.Equal(StringIoGuest.Wide, dwords.Console);
        Assert.Equal(StringIoGuest.Packed(16, 0), dwords.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Ins_reads_each_element_from_the_device_into_memory(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k);
        // LSR reads 0x60 (and 0 in a word's upper byte); the sum covers one byte either side, which stay 0.
        Assert.Equal(StringIoGuest.Packed(20, 20 * 0x60), vm.Call("insb", 20).Value);
        Assert.Equal(StringIoGuest.Packed(20, 10 * 0x60), vm.Call("insw", 10).Value);
        Assert.Equal(StringIoGuest.Packed(-20, 20 * 0x60), vm.Call("insb_back", 20).Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Hello_waits_once_for_the_uart_and_prints_its_greeting_with_one_rep_outsb(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Hello.Image(), k.Options(GuestMemoryBacking.HostMemory));
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0, r.ToString());
        Assert.Equal(Hello.Greeting, r.Console);
        // One IN of LSR, one exit per byte of the REP OUTSB (KVM's emulator), the exit port.
        Assert.Equal(1 + Hello.Greeting.Length + 1, r.Exits);
    }
}
