// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// docs/sandbox.md's code, as written there but for the kernel and memory the options name (the guide leaves them
/// at their defaults) and the image (the guide loads sum.elf), on both kernels: a guide whose samples do not compile
/// or do not do what it says fails here.
/// </summary>
public sealed class SandboxGuideSampleTests
{
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_call(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        GuestImage image = Sum.Image();
        using var vm = MicroVm.Create(image, k.Options(GuestMemoryBacking.HostMemory) with
        {
            MemorySize = 2 << 20,
            MaxExits = 1_000_000,
        });
        CallResult r = vm.Call("sum", "hello"u8);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal((ulong)"hello"u8.ToArray().Sum(b => b), r.Value);
        CallResult add = vm.Call("add", [2, 3]);
        Assert.Equal(5UL, add.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Host_functions(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var lines = new List<string>();
        var functions = new HostFunctions();
        functions.Add("now", () => (ulong)DateTime.UtcNow.Ticks);
        functions.Add("log", ctx => { lines.Add(ctx.ReadUtf8(ctx.Args[0], ctx.Args[1])); return 0; });
        // The hostcall demo resolves "log" and "lookup" by name and calls them; the guide's two functions plus the
        // demo's lookup (whose answer it prints) are enough for its _start.
        foreach (RegisteredHostFunction f in HostCalling.Functions(TextWriter.Null, seed: 1))
        {
            if (f.Name == "lookup") functions.Add(f.Name, f.Function);
        }
        using var vm = MicroVm.Create(HostCalling.Image(), k.Options(GuestMemoryBacking.HostMemory) with { HostFunctions = functions });
        CallResult r = vm.Run();
        Assert.True(r.IsSuccess, $"{r.Outcome} {r.Detail}");
        Assert.NotEmpty(lines);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Snapshots(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        string path = Path.Combine(Path.GetTempPath(), $"counter-{Guid.NewGuid():N}.kvs");
        try
        {
            using var vm = MicroVm.Create(Counter.Image(), k.Options(GuestMemoryBacking.HostMemory));
            vm.Call("init", 4);
            MicroVmSnapshot snapshot = vm.Snapshot();
            using var copy = MicroVm.Create(snapshot, k.Options(GuestMemoryBacking.HostMemory));
            using (var file = File.Create(path)) snapshot.WriteTo(file);
            MicroVmSnapshot again;
            using (var file = File.OpenRead(path)) again = MicroVmSnapshot.ReadFrom(file);

            // Each copy goes on from the snapshot's counter, independently of the others.
            Assert.Equal(1UL, copy.Call("increment").Value);
            Assert.Equal(2UL, copy.Call("increment").Value);
            using var fromFile = MicroVm.Create(again, k.Options(GuestMemoryBacking.HostMemory));
            Assert.Equal(1UL, fromFile.Call("increment").Value);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
