// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>The call ABI: arguments in registers and the call region, input bytes in, result and output bytes out.</summary>
public sealed class CallTests
{
    [KvmFact]
    public void Sum_of_an_input_buffer_is_returned()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var input = new byte[10_000];
        new Random(5).NextBytes(input);
        var r = vm.Call("sum", input);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(0, r.Status);
        Assert.Equal((ulong)input.Sum(b => (long)b), r.Value);
        // It returned through the trampoline.
        Assert.InRange(r.Rip, Layout.Trampoline, Layout.Trampoline + (ulong)Trampoline.Bytes.Length);
    }

    [KvmFact]
    public void Fletcher_checksum_matches_the_reference_and_many_calls_reuse_one_vm()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var random = new Random(7);
        for (int i = 0; i < 20; i++)
        {
            var input = new byte[random.Next(0, 4096) & ~3];
            random.NextBytes(input);
            Assert.Equal(Sum.Fletcher64(input), vm.Call("fletcher64", input).Value);
        }
    }

    [KvmFact]
    public void Demo_sum_returns_5050()
    {
        var demo = DemoGuests.Find("sum")!;
        using var vm = MicroVm.Create(demo.Image(), GuestRun.Quick);
        Assert.Equal(5050UL, demo.Invoke(vm).Value);
    }

    [KvmFact]
    public void Register_arguments_and_the_call_region_carry_the_arguments()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        Assert.Equal(ulong.MaxValue, vm.Call("add", ulong.MaxValue - 5, 5).Value);
        Assert.Equal(2UL, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.ArgCount)));
        Assert.Equal(5UL, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Args) + 8));
        Assert.Equal(CallRegion.MagicValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Magic)));
        Assert.Equal(vm.Image.Exports["add"], vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Entry)));
    }

    [KvmFact]
    public void A_collection_of_integers_is_integer_arguments_and_byte_data_is_input()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        Assert.Equal(5UL, vm.Call("add", [2, 3]).Value);
        Assert.Equal(2UL, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.ArgCount)));
        Assert.Equal(5UL, vm.Call("add", CancellationToken.None, [2, 3]).Value);
        // Bytes in any form are input: sum(input_ptr, input_len) adds them up.
        byte[] bytes = [2, 3];
        Assert.Equal(5UL, vm.Call("sum", bytes).Value);
        Assert.Equal(5UL, vm.Call("sum", bytes.AsSpan()).Value);
        Assert.Equal((ulong)('a' + 'b'), vm.Call("sum", "ab"u8).Value);
        Assert.Equal(5UL, vm.Call("sum", bytes, CancellationToken.None).Value);
    }

    [KvmFact]
    public void Output_bytes_come_back()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var r = vm.Call("reverse", "guest_memfd"u8);
        Assert.Equal(11UL, r.Value);
        Assert.Equal("dfmem_tseug"u8.ToArray(), r.Output.ToArray());
        // The next call starts with no output.
        Assert.True(vm.Call("add", 1, 1).Output.IsEmpty);
    }

    [KvmFact]
    public void Host_misuse_is_an_exception_not_a_guest_outcome()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        var unknown = Assert.Throws<MicroVmException>(() => vm.Call("nope"));
        Assert.Contains("sum", unknown.Message, StringComparison.Ordinal); // lists the exports
        Assert.Throws<MicroVmException>(() => vm.Call("add", 1, 2, 3, 4, 5, 6, 7));
        Assert.Throws<MicroVmException>(() => vm.Call("sum", new byte[Layout.CallDataEnd - Layout.CallData + 1]));
        // None of that touched the VM.
        Assert.Equal(3UL, vm.Call("add", 1, 2).Value);
    }

    [KvmFact]
    public void Bad_options_are_rejected_before_anything_is_created()
    {
        var image = Hello.Image();
        // Each refusal names the option (not, say, a guest memory the kernel cannot give).
        Refused(new() { MemorySize = 3 * 1024 * 1024 }, "MicroVmOptions.MemorySize");
        Refused(new() { MemorySize = 1024 * 1024 }, "MicroVmOptions.MemorySize");
        Refused(new() { Timeout = TimeSpan.Zero }, "MicroVmOptions.Timeout");
        Refused(new() { MaxExits = 0 }, "MicroVmOptions.MaxExits");
        // Validation comes first even when the backing asked for does not exist here.
        Refused(new() { MaxExits = 0, Memory = GuestMemoryBacking.GuestMemfd }, "MicroVmOptions.MaxExits");

        void Refused(MicroVmOptions bad, string option)
        {
            var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(image, bad));
            Assert.StartsWith(option, e.Message, StringComparison.Ordinal);
        }
    }

    [KvmFact]
    public void Larger_memory_is_mapped_with_2_MiB_pages_up_to_its_end()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Default with { MemorySize = 8 * 1024 * 1024 });
        // Input placed by the host near the top of memory, summed by the guest through the 2 MiB mappings.
        ulong top = vm.Memory.Size - 4096;
        vm.Memory.Fill(top, 4096, 3);
        Assert.Equal(3UL * 4096, vm.Call("sum", top, 4096).Value);
        // One byte beyond the end is not mapped: the guest's read faults there.
        var r = vm.Call("sum", vm.Memory.Size, 1);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal((14, 0x0UL, vm.Memory.Size), (r.Exception!.Vector, r.Exception.ErrorCode, r.Exception.Cr2));
    }

    [KvmFact]
    public void A_shared_kvm_is_not_disposed_with_the_micro_vm()
    {
        using var kvm = Kvm.Open();
        using (var vm = MicroVm.Create(Hello.Image(), GuestRun.Default with { Kvm = kvm })) Assert.True(vm.Run().IsSuccess);
        Assert.False(kvm.Handle.IsClosed);
        using var again = MicroVm.Create(Hello.Image(), GuestRun.Default with { Kvm = kvm });
        Assert.True(again.Run().IsSuccess);
    }
}
