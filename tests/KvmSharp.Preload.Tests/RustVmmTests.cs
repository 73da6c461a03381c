// SPDX-License-Identifier: MIT
namespace KvmSharp.Preload.Tests;

/// <summary>
/// RustPrograms/gmem_vmm.rs, a VMM in Rust (std only) whose guest lives in guest_memfd memory alone, built with rustc
/// in the test run: on the emulated 6.18 kernel through <c>kvmsharp exec</c> its guest reads and writes guest_memfd
/// memory; on the real kernel it runs as far as the kernel offers guest_memfd.
/// </summary>
public sealed class RustVmmTests
{
    private static readonly Lazy<(string? Executable, string? Unavailable)> Vmm = new(Build);

    [KvmFact]
    public void A_rust_vmm_runs_its_guest_in_guest_memfd_memory_on_the_emulated_kernel()
    {
        var (executable, unavailable) = Vmm.Value;
        Skip.If(unavailable is not null, unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(
            "KVM_CAP_GUEST_MEMFD_FLAGS = 0x3\nguest read 0x2a from guest_memfd (port 0x10), wrote 0x5a back, halted: true\n",
            run.Stdout);
    }

    [KvmFact]
    public void The_same_binary_on_the_real_kernel_uses_guest_memfd_where_the_kernel_has_it()
    {
        var (executable, unavailable) = Vmm.Value;
        Skip.If(unavailable is not null, unavailable);
        var run = ExecRun.Of(["--kernel", "linux"], executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        using var kvm = Kvm.Open();
        long gmem = kvm.CheckExtension(Abi.KvmCaps.KVM_CAP_GUEST_MEMFD);
        Skip.If(gmem <= 0, $"the real kernel has no guest_memfd (the program says: {run.Stdout.Trim()})");
        Assert.Contains("guest read 0x2a from guest_memfd", run.Stdout, StringComparison.Ordinal);
    }

    private static (string?, string?) Build()
    {
        string? rustc = new[] { Environment.GetEnvironmentVariable("PATH")?.Split(':') ?? [], [Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cargo", "bin")] }
            .SelectMany(d => d).Select(d => Path.Combine(d, "rustc")).FirstOrDefault(File.Exists);
        if (rustc is null) return (null, "rustc is not installed (PATH, ~/.cargo/bin): the Rust VMM cannot be built");
        string output = CProgram.OutputPath("gmem_vmm");
        string? unavailable = CProgram.Compile(rustc, ["-O", "--edition", "2021", "-o", output,
            Path.Combine(AppContext.BaseDirectory, "RustPrograms", "gmem_vmm.rs")], "gmem_vmm.rs");
        return unavailable is null ? (output, null) : (null, unavailable);
    }
}
