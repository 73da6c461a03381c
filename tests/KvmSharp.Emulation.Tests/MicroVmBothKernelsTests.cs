// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Every built-in guest and every misbehaving one, run in a micro-VM on the real kernel and on the emulator: the whole
/// observable result must agree (outcome, status, value, console, output, exits, RIP, port, host calls, the CPU
/// exception with its whole frame). After a
/// timeout only the outcome is compared: where a spinning guest is, and what it printed, when the watchdog fires is
/// timing. The real kernel runs the guest in the best memory it offers (a guest_memfd, or host memory on a kernel
/// built without CONFIG_KVM_GUEST_MEMFD); the emulator runs it twice: built like this host as it is, where it must
/// pick that same backing, and with guest_memfd, so the guest_memfd path is compared on every host too.
/// </summary>
public sealed class MicroVmBothKernelsTests
{
    /// <summary>The emulator like this host as it is (same build, so same backing as the real kernel).</summary>
    public const string AsThisHost = "as this host";

    /// <summary>The emulator like this host with guest_memfd, the micro-VM in a guest_memfd.</summary>
    public const string WithGuestMemfd = "guest_memfd";

    public static TheoryData<string, string> Guests()
    {
        var data = new TheoryData<string, string>();
        foreach (string name in DemoGuests.All.Select(d => d.Name).Concat(MoreGuests.ByName.Keys))
        {
            data.Add(name, AsThisHost);
            data.Add(name, WithGuestMemfd);
        }
        return data;
    }

    [KvmTheory]
    [MemberData(nameof(Guests))]
    public void The_result_is_the_same_on_both_kernels(string guest, string emulator)
    {
        (CallResult real, GuestMemoryBacking realMemory) = RunOn(LinuxKernel.Instance, null, guest, backing: null);
        bool asThisHost = emulator == AsThisHost;
        EmulatorConfig config = asThisHost ? HostMatching.LikeThisHostAsItIs() : EmulatorConfig.LikeThisHost(guestMemfd: true);
        using var emulated = new EmulatedKernel(config);
        (CallResult emu, GuestMemoryBacking emuMemory) = RunOn(emulated, config, guest, asThisHost ? null : GuestMemoryBacking.GuestMemfd);
        // Left to choose, the emulator built like this host picks what the real kernel picked.
        Assert.Equal(asThisHost ? realMemory : GuestMemoryBacking.GuestMemfd, emuMemory);

        // The vault needs private memory, which neither kernel built like this host gives a default VM (with either
        // backing): both tell the guest so, and it stops before any hypercall.
        if (guest == "vault") Assert.Equal((Vault.NoPrivateMemory, 0L), (real.Status, emu.Conversions));

        Assert.Equal(real.Outcome, emu.Outcome);
        if (real.Outcome == GuestOutcome.Timeout) return;
        Assert.Equal(real.Status, emu.Status);
        Assert.Equal(real.Value, emu.Value);
        Assert.Equal(real.Console, emu.Console);
        Assert.Equal(real.Output.ToArray(), emu.Output.ToArray());
        Assert.Equal(real.Port, emu.Port);
        Assert.Equal(real.HostCalls, emu.HostCalls);
        Assert.Equal(real.Conversions, emu.Conversions);
        Assert.Equal(real.Detail, emu.Detail);
        Assert.Equal(real.Rip, emu.Rip);
        Assert.Equal(real.Exits, emu.Exits);
        Assert.Equal(real.Exception, emu.Exception);
    }

    private static (CallResult, GuestMemoryBacking) RunOn(IKernel kernel, EmulatorConfig? config, string guest, GuestMemoryBacking? backing)
    {
        using var kvm = Kvm.Open(kernel, proposals: config?.Proposals);
        DemoGuest? demo = DemoGuests.Find(guest);
        var options = new MicroVmOptions
        {
            Kvm = kvm,
            // Only the endless loops should meet the limit: every other guest gets far more than it needs (the stack
            // overflow runs 16 Ki calls, counter's init thousands of stores, at this host's ≈1.5 µs an instruction),
            // so a busy host cannot turn a result into a timeout, which would compare only the outcome.
            Timeout = guest is "loop" or "loop-cli" ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromSeconds(10),
            MaxExits = 100_000,
            HostFunctions = demo?.HostFunctions?.Invoke(TextWriter.Null),
            Memory = backing, // null: the best this kernel offers
        };
        GuestImage image = demo?.Image() ?? MoreGuests.ByName[guest]();
        using var vm = MicroVm.Create(image, options);
        return (demo is not null ? demo.Invoke(vm) : vm.Run(), vm.Memory.Backing);
    }
}

/// <summary>Guests that are not demos (the demos already cover exit42, badport, loop, triplefault, divide, ud, pagefault, halt, wild).</summary>
internal static class MoreGuests
{
    public static IReadOnlyDictionary<string, Func<GuestImage>> ByName { get; } = new Dictionary<string, Func<GuestImage>>
    {
        ["null-write"] = Misbehaving.NullWriteImage,
        ["stack-overflow"] = Misbehaving.StackOverflowImage,
        ["general-protection"] = Misbehaving.GeneralProtectionImage,
        ["loop-cli"] = Misbehaving.EndlessLoopNoInterruptsImage,
        ["mmio-write"] = Misbehaving.MmioWriteImage,
        ["mmio-read"] = Misbehaving.MmioReadImage,
    };
}
