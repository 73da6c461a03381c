// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// PythonPrograms/gmem_vmm.py, a VMM in Python's standard library (os, fcntl, mmap, ctypes) whose guest lives in
/// guest_memfd memory alone, run by the system's python3: on the emulated 6.18 kernel through <c>kvmsharp exec</c>
/// its guest reads and writes guest_memfd memory that Python's mmap module mapped (and fstat'ed and dup'ed); on the
/// real kernel it runs as far as the kernel offers guest_memfd. The guest is assembled here with Iced.
/// </summary>
public sealed class PythonVmmTests
{
    private const string Python = "/usr/bin/python3";

    private static string Script => Path.Combine(AppContext.BaseDirectory, "PythonPrograms", "gmem_vmm.py");

    [KvmFact]
    public void A_python_vmm_runs_its_guest_in_guest_memfd_memory_on_the_emulated_kernel()
    {
        Skip.If(!File.Exists(Python), $"{Python} is not installed (Debian: apt-get install python3)");
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], Python, Script, GuestHex());
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(
            "KVM_CAP_GUEST_MEMFD_FLAGS = 0x3\nguest read 0x2a from guest_memfd (port 0x10), wrote 0x5a back, halted: true\n",
            run.Stdout);
    }

    [KvmFact]
    public void The_same_script_on_the_real_kernel_uses_guest_memfd_where_the_kernel_has_it()
    {
        Skip.If(!File.Exists(Python), $"{Python} is not installed (Debian: apt-get install python3)");
        var run = ExecRun.Of(["--kernel", "linux"], Python, Script, GuestHex());
        Assert.True(run.ExitCode == 0, run.ToString());
        using var kvm = Kvm.Open();
        long gmem = kvm.CheckExtension(Abi.KvmCaps.KVM_CAP_GUEST_MEMFD);
        Skip.If(gmem <= 0, $"the real kernel has no guest_memfd (the script says: {run.Stdout.Trim()})");
        Assert.Contains("guest read 0x2a from guest_memfd", run.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Real mode at 0: read the byte at 0x1000, report it on port 0x10, write 0x5a there, halt.</summary>
    private static string GuestHex()
    {
        var a = new Assembler(16);
        a.mov(al, __byte_ptr[0x1000]);
        a.@out(0x10, al);
        a.mov(__byte_ptr[0x1000], 0x5a);
        a.hlt();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        return Convert.ToHexString(stream.ToArray());
    }
}
