// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The guest SDK's functions end to end: CGuest/sdk_guest.c calls every helper of kvmsharp_guest.h and the host checks
/// what each did — on this machine's /dev/kvm and on the emulated kernel, whose interpreter runs the same compiler
/// output, built by gcc and by clang.
/// </summary>
public sealed class SdkGuestTests
{
    private const uint Sum6Id = 9;
    private const HostCallStatus Refused = HostCallStatus.FirstApplicationStatus + 5;

    private static readonly CompiledGuest Guest = new("sdk_guest.c");

    public static TheoryData<string, string> KernelsAndCompilers => CompiledGuest.KernelsAndCompilers;

    private static GuestImage Image(string compiler) => Guest.Image(compiler);

    private static MicroVm Create(TestKernel k, string compiler, HostFunctions? functions = null) =>
        MicroVm.Create(Image(compiler), k.Options(null) with { HostFunctions = functions ?? new HostFunctions() });

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Print_helpers_write_decimal_signed_and_hex_on_com1_and_the_entry_prints_the_abi_version(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        var start = vm.Run();
        Assert.Equal(GuestOutcome.Exit, start.Outcome);
        Assert.Equal($"sdk guest, ABI {CallRegion.VersionValue}\n", start.Console);

        Assert.Equal("1234567890 -1234567890 0x499602D2\n", vm.Call("print_numbers", 1234567890).Console);
        Assert.Equal("0 0 0x0\n", vm.Call("print_numbers", 0).Console);
        Assert.Equal("18446744073709551615 1 0xFFFFFFFFFFFFFFFF\n", vm.Call("print_numbers", ulong.MaxValue).Console);
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Kvms_write_prints_a_whole_buffer_in_one_exit_where_the_console_write_port_is_offered(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        var r = vm.Call("print_long", 4000);
        Assert.True(r.IsSuccess && r.Value == 0, r.ToString());
        Assert.Equal(string.Concat(Enumerable.Range(0, 4000).Select(i => (char)('0' + (i % 10)))), r.Console);
        Assert.Equal(2, r.Exits);   // the console write and the return (COM1 would take 4 000)
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Arg_count_and_args_read_the_call_region(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        Assert.Equal(0UL, GuestRun.Value(vm, "sum_args"));
        Assert.Equal(3_000_000UL + 6, GuestRun.Value(vm, "sum_args", 1, 2, 3));
        Assert.Equal(6_000_000UL + 21_000, GuestRun.Value(vm, "sum_args", 1000, 2000, 3000, 4000, 5000, 6000));
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Input_arrives_in_the_call_data_and_output_bytes_come_back(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        var reversed = vm.Call("reverse", "hello, guest"u8);
        Assert.True(reversed.IsSuccess, reversed.ToString());
        Assert.Equal(12UL, reversed.Value);   // ~0: the registers and the call region disagreed about the input
        Assert.Equal("tseug ,olleh", Encoding.ASCII.GetString(reversed.Output.Span));

        byte[] input = [.. Enumerable.Range(0, 5000).Select(i => (byte)(i * 7))];
        var copied = vm.Call("copy_out", input);
        Assert.Equal(0UL, copied.Value);
        Assert.Equal(input, copied.Output.ToArray());

        // A call without input: no pointer, no output unless set.
        var none = vm.Call("copy_out");
        Assert.Equal(0UL, none.Value);
        Assert.Equal(0, none.Output.Length);
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Output_outside_the_call_data_area_or_too_long_for_it_is_refused_in_the_guest(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        var r = vm.Call("refused_output");
        Assert.Equal(0b11UL, r.Value);
        Assert.Equal(0, r.Output.Length);
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Host_calls_resolve_by_name_pass_three_and_six_arguments_and_report_every_status(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        var functions = new HostFunctions();
        functions.Add("add3", c => c.Args[0] + c.Args[1] + c.Args[2]);
        functions.Add(Sum6Id, "sum6", c => c.Args[0] + 10 * c.Args[1] + 100 * c.Args[2] + 1000 * c.Args[3] + 10_000 * c.Args[4] + 100_000 * c.Args[5]);
        functions.Add("refuse", c =>
        {
            c.Status = Refused;
            return 0;
        });
        using var vm = Create(k, compiler, functions);

        var add = vm.Call("host_add3", 40, 1, 1);
        Assert.Equal(42UL, add.Value);
        Assert.Equal(2, add.HostCalls);   // resolve, then the call
        Assert.Equal(654_321UL, GuestRun.Value(vm, "host_sum6"));

        var statuses = vm.Call("host_statuses");
        Assert.True(statuses.IsSuccess, statuses.ToString());
        ulong expected = (ulong)HostCallStatus.UnknownFunction          // resolve("nope")
            | (ulong)HostCallStatus.BadArgument << 8                     // resolve("")
            | (ulong)HostCallStatus.BadArgument << 16                    // resolve(65 bytes)
            | (ulong)HostCallStatus.UnknownFunction << 24                // id 77
            | ((ulong)Refused & 0xFF) << 32 | ((ulong)Refused >> 8) << 48 // the function's own status
            | (ulong)HostCallStatus.BadArgument << 40;                   // seven arguments: refused in the guest
        Assert.Equal($"0x{expected:X}", $"0x{statuses.Value:X}");
        Assert.Equal(6, statuses.HostCalls);   // four resolves, id 77, refuse: the seven-argument call never left the guest
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Abi_version_features_tsc_rate_and_exit_are_what_the_host_set(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        Assert.Equal(CallRegion.VersionValue, GuestRun.Value(vm, "abi_version"));
        Assert.Equal(CallRegion.FeatureConsoleWrite, GuestRun.Value(vm, "features"));   // VM type 0: no private memory
        Assert.Equal(vm.Vcpu.TscKhz, GuestRun.Value(vm, "tsc_khz"));
        Assert.Equal(0b11UL, GuestRun.Value(vm, "tsc_and_cpuid"));   // the TSC moves; CPUID says hypervisor
        Assert.Equal(ulong.MaxValue / 3_000_000 * 1000 + ulong.MaxValue % 3_000_000 * 1000 / 3_000_000,
            GuestRun.Value(vm, "tsc_to_us", ulong.MaxValue, 3_000_000));
        Assert.Equal(2_500UL, GuestRun.Value(vm, "tsc_to_us", 7_500_000, 3_000_000));

        var exit = vm.Call("exit_with", 42);
        Assert.Equal(GuestOutcome.Exit, exit.Outcome);
        Assert.Equal(42, exit.Status);
        Assert.Null(exit.Value);   // an exit through the port, not a return
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Without_private_memory_the_helpers_answer_enosys_and_issue_no_hypercall(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = Create(k, compiler);
        var r = vm.Call("private_roundtrip");
        Assert.Equal(GuestOutcome.Exit, r.Outcome);   // on kvm_pvm a VMCALL here would never return: Timeout
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_ENOSYS), r.Value);
        Assert.Equal(0, r.Conversions);
    }

    [SkippableTheory]
    [InlineData("gcc")]
    [InlineData("clang")]
    public void With_private_memory_the_host_cannot_read_a_page_the_guest_made_private_until_it_is_shared_again(string compiler)
    {
        // SW_PROTECTED with guest_memfd in-place conversion: today only the emulated kernel has it.
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        var functions = new HostFunctions();
        functions.Add(1, "peek", c => (ulong)c.ReadBytes(c.Args[0], c.Args[1]).Sum(b => (long)b));
        using var vm = MicroVm.Create(Image(compiler), k.Options(GuestMemoryBacking.GuestMemfd) with { VmType = VmType.SwProtected, HostFunctions = functions });
        Assert.Equal(CallRegion.FeaturePrivateMemory | CallRegion.FeatureConsoleWrite, GuestRun.Value(vm, "features"));

        var r = vm.Call("private_roundtrip");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(0UL, r.Value);   // 1: the host read the private page; 2: not shared again; 3, 4: the shared read failed
        Assert.Equal(2, r.Conversions);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EINVAL), GuestRun.Value(vm, "private_unaligned"));
    }

    [SkippableTheory]
    [InlineData("gcc")]
    [InlineData("clang")]
    public void Kvms_write_of_a_private_buffer_falls_back_to_one_out_per_byte_after_the_host_refuses_it(string compiler)
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = MicroVm.Create(Image(compiler), k.Options(GuestMemoryBacking.GuestMemfd) with { VmType = VmType.SwProtected });
        var r = vm.Call("print_private");
        Assert.True(r.IsSuccess && r.Value == 0, r.ToString());
        Assert.Equal("the launch codes are 0000", r.Console);
        Assert.Equal(2, r.Conversions);
        // The refused console write, 25 OUTs, the two conversions' hypercall exits and the return.
        Assert.Equal(1 + 25 + 2 + 1, r.Exits);
    }
}
