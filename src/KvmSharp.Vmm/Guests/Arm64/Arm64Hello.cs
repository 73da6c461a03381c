// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Guests.Arm64;

/// <summary>
/// The arm64 hello: prints <see cref="Hello.Greeting"/> on the console (the 16550 on the MMIO port window) and exits
/// with status 0.
/// </summary>
public static class Arm64Hello
{
    /// <summary>The image: <c>_start</c> calls <c>greet</c> (x0 = bytes printed), then exits with 0.</summary>
    public static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        A64Label start = p.Export("_start");
        A64Label greet = p.Export("greet");
        ulong message = p.Data([.. System.Text.Encoding.ASCII.GetBytes(Hello.Greeting), 0]);

        a.Bind(start);
        a.Bl(greet);
        p.ExitWith(0);

        // greet(): x0 = the number of bytes printed. Waits once for LSR "THR empty" (bit 5), then one byte per store
        // to THR (one MMIO exit each).
        a.Bind(greet);
        A64Label wait = a.CreateLabel(), loop = a.CreateLabel(), done = a.CreateLabel();
        a.MovImm(X(9), Layout.Port(Ports.Com1));
        a.Movz(W(11), 0x20);
        a.Bind(wait);
        a.Ldrb(W(10), X(9), (uint)Serial16550Lsr);
        a.Ands(Wzr, W(10), W(11));
        a.B(A64Condition.EQ, wait);
        a.MovImm(X(12), message);
        a.Movz(X(0), 0);
        a.Bind(loop);
        a.Ldrb(W(10), X(12));
        a.Cbz(W(10), done);
        a.Strb(W(10), X(9));
        a.AddImm(X(12), X(12), 1);
        a.AddImm(X(0), X(0), 1);
        a.B(loop);
        a.Bind(done);
        a.Ret();
        return p.Build(start);
    }

    private const ulong Serial16550Lsr = Devices.Serial16550.Lsr;
}
