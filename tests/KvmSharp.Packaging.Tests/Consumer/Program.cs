// SPDX-License-Identifier: MIT
// A program a user writes against the KvmSharp NuGet packages — restored from the packed feed, not the projects.
// The packaging tests build it and check every line it prints.
using KvmSharp;
using KvmSharp.Conformance;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

// The typed API on the emulated kernel: a guest_memfd that is mappable and shared, written and read back.
using (var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux618))))
using (var vm = kvm.CreateVm())
{
    Console.WriteLine($"emulated flags: {vm.SupportedGuestMemfdFlags}");
    using var gmem = vm.CreateGuestMemfd(2 << 20, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
    using var mem = gmem.Map();
    mem.Write<ulong>(0x1000, 0x1234_5678);
    Console.WriteLine($"read back: 0x{mem.Read<ulong>(0x1000):X}");

    // A private page is refused before it is touched (the kernel would answer with SIGBUS).
    using var privateGmem = vm.CreateGuestMemfd(2 << 20, GuestMemfdFlags.Mmap);
    using var privateMem = privateGmem.Map();
    try
    {
        privateMem.Read<byte>(0);
        Console.WriteLine("private page: read");
    }
    catch (GuestMemoryFaultException e)
    {
        Console.WriteLine($"private page: {nameof(GuestMemoryFaultException)} {e.ErrnoName}");
    }

    try
    {
        vm.CreateGuestMemfd(4095).Dispose();
        Console.WriteLine("size 4095: created");
    }
    catch (KvmException e)
    {
        Console.WriteLine($"size 4095: {e.ErrnoName} from {e.Operation}");
    }
}

// The sandbox on the emulated kernel: guest memory is one guest_memfd.
using (var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux618))))
{
    var sum = DemoGuests.Find("sum")!;
    using var micro = MicroVm.Create(sum.Image(), new MicroVmOptions { Kvm = kvm });
    var result = sum.Invoke(micro);
    Console.WriteLine($"emulated micro-vm: {result.Outcome} status {result.Status} value {result.Value} memory {micro.Memory.Backing}");
}

// The conformance suite from its package: the upstream guest_memfd_test.c cases on the emulated kernel.
var results = ConformanceRunner.RunAll(KernelTarget.Emulated, c => c.Group == "GuestMemfdTest").ToList();
Console.WriteLine($"conformance on the emulated kernel: {results.Count(r => r.Outcome == CaseOutcome.Passed)} passed, "
    + $"{results.Count(r => r.Outcome == CaseOutcome.Failed)} failed, {results.Count(r => r.Outcome == CaseOutcome.Skipped)} skipped");

// The real kernel, when this machine has one: the P/Invoke layer works from the package.
if (File.Exists("/dev/kvm"))
{
    using var kvm = Kvm.Open();
    var hello = DemoGuests.Find("hello")!;
    using var micro = MicroVm.Create(hello.Image(), new MicroVmOptions { Kvm = kvm, Memory = null, Timeout = TimeSpan.FromSeconds(10) });
    var result = hello.Invoke(micro);
    Console.WriteLine($"real api version: {kvm.ApiVersion}");
    Console.Write($"real micro-vm: {result.Outcome} status {result.Status}: {result.Console}");
}
