// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// A built-in guest the CLI can run by name: its image, what to call in it (<paramref name="Start"/>, with the token
/// its calls take), and the host functions it calls (made for a log writer; null when it calls none) — give them to
/// <see cref="MicroVmOptions.HostFunctions"/>.
/// </summary>
public sealed record DemoGuest(string Name, string Description, Func<GuestImage> Image, Func<MicroVm, CancellationToken, CallResult> Start,
    Func<TextWriter, HostFunctions>? HostFunctions = null)
{
    /// <summary>
    /// Runs the demo in <paramref name="vm"/>; cancelling <paramref name="cancellationToken"/> stops its guest
    /// (<see cref="GuestOutcome.Cancelled"/>).
    /// </summary>
    public CallResult Invoke(MicroVm vm, CancellationToken cancellationToken = default) => Start(vm, cancellationToken);
}

/// <summary>The built-in guests, by name (<c>kvmsharp run hello</c>).</summary>
public static class DemoGuests
{
    /// <summary>The input <c>sum</c> is called with: the bytes 1..100 (sum 5050).</summary>
    public static byte[] SumInput { get; } = [.. Enumerable.Range(1, 100).Select(i => (byte)i)];

    /// <summary>Every built-in guest, in the order the CLI lists them.</summary>
    public static IReadOnlyList<DemoGuest> All { get; } =
    [
        new("hello", "prints a greeting on COM1 and exits with status 0", Hello.Image, (vm, ct) => vm.Run(ct)),
        new("sum", "sum(bytes 1..100) through the call ABI; returns 5050", Sum.Image, (vm, ct) => vm.Call("sum", SumInput, ct)),
        new("hostcall", "calls host functions: resolves them by name, logs through the host, prints a value the host looked up",
            HostCalling.Image, (vm, ct) => vm.Run(ct), log => HostCalling.Functions(log)),
        new("vault", "keeps a secret in a page it makes private (KVM_HC_MAP_GPA_RANGE); needs a VM with private memory",
            Vault.Image, (vm, ct) => vm.Run(ct), Vault.Functions),
        new("counter", "keeps a counter and a table built by init() in its globals across calls (snapshots); init(1), three increments → 3",
            Counter.Image, Counter.Demo),
        new("exit42", "exits with status 42", Misbehaving.Exit42Image, (vm, ct) => vm.Run(ct)),
        new("badport", "writes to port 0x1234, which no device claims", Misbehaving.BadPortImage, (vm, ct) => vm.Run(ct)),
        new("loop", "spins forever; stopped by the timeout", Misbehaving.EndlessLoopImage, (vm, ct) => vm.Run(ct)),
        new("triplefault", "loads an empty IDT over the VMM's, then UD2: triple fault", Misbehaving.TripleFaultImage, (vm, ct) => vm.Run(ct)),
        new("divide", "divides by zero: a divide error (#DE) the VMM reports", Misbehaving.DivideErrorImage, (vm, ct) => vm.Run(ct)),
        new("ud", "executes UD2: an invalid opcode (#UD) the VMM reports", Misbehaving.InvalidOpcodeImage, (vm, ct) => vm.Run(ct)),
        new("pagefault", $"writes to unmapped address 0x{Misbehaving.UnmappedAddress:X}: a page fault (#PF) with CR2 and error code",
            Misbehaving.PageFaultImage, (vm, ct) => vm.Run(ct)),
        new("halt", "HLT with interrupts off", Misbehaving.HaltImage, (vm, ct) => vm.Run(ct)),
        new("wild", "maps memory that does not exist and jumps there: internal error", Misbehaving.WildJumpImage, (vm, ct) => vm.Run(ct)),
    ];

    /// <summary>The built-in guest called <paramref name="name"/> (exact, case-sensitive), or null.</summary>
    public static DemoGuest? Find(string name) => All.FirstOrDefault(d => d.Name == name);

    /// <summary>
    /// The arm64 built-in guests (A64, Guests/Arm64): the same names and results as their x86-64 counterparts where
    /// there is one, and the arm64 endings.
    /// </summary>
    public static IReadOnlyList<DemoGuest> Arm64 { get; } =
    [
        new("hello", "prints a greeting on the console (16550 on the MMIO port window) and exits with status 0", Guests.Arm64.Arm64Hello.Image, (vm, ct) => vm.Run(ct)),
        new("sum", "sum(bytes 1..100) through the call ABI; returns 5050", Guests.Arm64.Arm64Sum.Image, (vm, ct) => vm.Call("sum", SumInput, ct)),
        new("exit42", "exits with status 42", Guests.Arm64.Arm64Misbehaving.Exit42Image, (vm, ct) => vm.Run(ct)),
        new("badmmio", $"writes to MMIO address 0x{Guests.Arm64.Arm64Misbehaving.BadMmioAddress:X} (port 0x1234 of the window), which no device claims",
            Guests.Arm64.Arm64Misbehaving.BadMmioImage, (vm, ct) => vm.Run(ct)),
        new("loop", "spins forever; stopped by the timeout", Guests.Arm64.Arm64Misbehaving.EndlessLoopImage, (vm, ct) => vm.Run(ct)),
        new("ud", "executes UDF #0: an undefined-instruction exception the VMM's vector table reports", Guests.Arm64.Arm64Misbehaving.UndefinedImage, (vm, ct) => vm.Run(ct)),
        new("dataabort", "loads from 2^52, beyond the VA space: a data abort the VMM's vector table reports", Guests.Arm64.Arm64Misbehaving.DataAbortImage, (vm, ct) => vm.Run(ct)),
        new("poweroff", "PSCI SYSTEM_OFF: the guest powers the VM off (shutdown)", Guests.Arm64.Arm64Misbehaving.PowerOffImage, (vm, ct) => vm.Run(ct)),
    ];

    /// <summary>The built-in guest called <paramref name="name"/> for <paramref name="architecture"/>, or null.</summary>
    public static DemoGuest? Find(string name, GuestArchitecture architecture) =>
        (architecture == GuestArchitecture.Arm64 ? Arm64 : All).FirstOrDefault(d => d.Name == name);
}
