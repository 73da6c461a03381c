// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// kvms_printf and kvms_snprintf (kvmsharp_guest.h) against the C library: CGuest/format_cases.h runs in a micro-VM
/// through the header's formatter (format_guest.c) and on the host through glibc's printf and snprintf
/// (format_host.c); the guest's console must be the host program's output, byte for byte — on both kernels, with both
/// compilers, and in an arm64 micro-VM.
/// </summary>
public sealed class FormatGuestTests
{
    private static readonly CompiledGuest Guest = new("format_guest.c");

    private static readonly Lazy<GccBuild.Result> Host = new(() => GccBuild.InTempDirectory(dir =>
    {
        GccBuild.Compile(dir, ["-std=gnu11", "-O1", "-o", "host", Path.Combine(AppContext.BaseDirectory, "CGuest", "format_host.c")]);
        File.WriteAllText(Path.Combine(dir, "out"), GccBuild.Run(Path.Combine(dir, "host"), [], dir));
    }));

    public static TheoryData<string, string> KernelsAndCompilers => CompiledGuest.KernelsAndCompilers;

    private static string Expected()
    {
        var host = Host.Value;
        Skip.If(host.Output is null, $"the host build of format_host.c cannot be made: {host.Unavailable}");
        return Encoding.ASCII.GetString(host.Output!);
    }

    private static void AssertFormatsAsTheCLibrary(MicroVm vm)
    {
        string expected = Expected();
        var r = vm.Call("format_cases");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(expected, r.Console);
        Assert.Equal(5UL * 1000 + 'z', r.Value);   // snprintf(buf, 0, "%d", 12345): 5, buf untouched
        Assert.True(expected.Length > 600, $"the cases printed only {expected.Length} characters");
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Kvms_printf_and_kvms_snprintf_print_what_the_c_library_prints(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Guest.Image(compiler), k.Options(null) with { Timeout = TimeSpan.FromSeconds(60) });
        AssertFormatsAsTheCLibrary(vm);
    }

    [SkippableFact]
    public void An_arm64_guest_formats_the_same() => Arm64Kernel.Run(kvm =>
    {
        using var vm = MicroVm.Create(Guest.Image("arm64"), Arm64Kernel.Options(kvm) with { Timeout = TimeSpan.FromSeconds(60) });
        AssertFormatsAsTheCLibrary(vm);
    });

    [SkippableFact]
    public void A_printf_is_one_console_write_per_256_bytes()
    {
        using var k = TestKernel.Open(TestKernel.EmulatedName);
        using var vm = MicroVm.Create(Guest.Image("gcc"), k.Options(null));
        var r = vm.Call("format_cases");
        Assert.True(r.IsSuccess, r.ToString());
        // One write per printf (14 FORMATs, 4 SNFORMATs), one more each for the two lines longer than the 256-byte
        // buffer (303 and 294 characters), and the return.
        Assert.Equal(14 + 4 + 2 + 1, r.Exits);
    }
}
