// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// Progress reports of the mode-switch guests: a byte written to port <see cref="Port"/>, collected by the host
/// until the first other exit.
/// </summary>
public static class ReportPort
{
    public const byte Port = 0x10;

    /// <summary><c>mov al, value; out Port, al</c>.</summary>
    public static void Out(Assembler a, byte value)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.mov(al, value);
        a.@out(Port, al);
    }

    /// <summary>Runs to the first exit that is not an OUT to <see cref="Port"/>; returns the reported bytes and that exit.</summary>
    public static (List<byte> Reports, KvmExitReason Last) RunToEnd(Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        var reports = new List<byte>();
        for (int n = 0; n < 64; n++)
        {
            var exit = vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut && exit.IoPort == Port)
            {
                reports.Add(exit.IoData[0]);
                continue;
            }
            return (reports, exit.Reason);
        }
        throw new Xunit.Sdk.XunitException("the guest did not stop within 64 exits");
    }
}
