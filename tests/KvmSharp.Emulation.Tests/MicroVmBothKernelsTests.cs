// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Every built-in guest and every misbehaving one, run in a micro-VM on the real kernel and on the emulator preset
/// for this host: the whole observable result must agree (outcome, status, value, console, output, exits, RIP, port,
/// host calls). After a timeout only the outcome is compared: where a spinning guest is, and what it printed, when the
/// watchdog fires is timing.
/// </summary>
public sealed class MicroVmBothKernelsTests
{
    public static TheoryData<string> Guests()
    {
        var data = new TheoryData<string>();
        foreach (var demo in DemoGuests.All) data.Add(demo.Name);
        foreach (var name in MoreGuests.ByName.Keys) data.Add(name);
        return data;
    }

    [KvmTheory]
    [MemberData(nameof(Guests))]
    public void The_result_is_the_same_on_both_kernels(string guest)
    {
        CallResult real = RunOn(LinuxKernel.Instance, null, guest);
        var config = EmulatorConfig.LikeThisHost();
        using var emulated = new EmulatedKernel(config);
        CallResult emu = RunOn(emulated, config, guest);

        Assert.Equal(real.Outcome, emu.Outcome);
        if (real.Outcome == GuestOutcome.Timeout) return;
        Assert.Equal(real.Status, emu.Status);
        Assert.Equal(real.Value, emu.Value);
        Assert.Equal(real.Console, emu.Console);
        Assert.Equal(real.Output.ToArray(), emu.Output.ToArray());
        Assert.Equal(real.Port, emu.Port);
        Assert.Equal(real.HostCalls, emu.HostCalls);
        Assert.Equal(real.Detail, emu.Detail);
        Assert.Equal(real.Rip, emu.Rip);
        Assert.Equal(real.Exits, emu.Exits);
    }

    private static CallResult RunOn(IKernel kernel, EmulatorConfig? config, string guest)
    {
        using var kvm = Kvm.Open(kernel, proposals: config?.Proposals);
        DemoGuest? demo = DemoGuests.Find(guest);
        var options = new MicroVmOptions
        {
            Kvm = kvm,
            Timeout = TimeSpan.FromMilliseconds(200),
            MaxExits = 100_000,
            HostFunctions = demo?.HostFunctions?.Invoke(TextWriter.Null),
        };
        GuestImage image = demo?.Image() ?? MoreGuests.ByName[guest]();
        using var vm = MicroVm.Create(image, options);
        return demo is not null ? demo.Invoke(vm) : vm.Run();
    }
}

/// <summary>Guests that are not demos (the demos already cover exit42, badport, loop, triplefault, halt, wild).</summary>
internal static class MoreGuests
{
    public static IReadOnlyDictionary<string, Func<GuestImage>> ByName { get; } = new Dictionary<string, Func<GuestImage>>
    {
        ["null-write"] = Misbehaving.NullWriteImage,
        ["loop-cli"] = Misbehaving.EndlessLoopNoInterruptsImage,
        ["mmio-write"] = Misbehaving.MmioWriteImage,
        ["mmio-read"] = Misbehaving.MmioReadImage,
    };
}
