// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Guests.Arm64;

/// <summary>
/// The arm64 counterpart of <see cref="Sum"/>: <c>sum(ptr, len)</c> = the sum of the bytes (x0 = ptr, x1 = len,
/// result in x0) and <c>add(a, b)</c> = a + b; <c>_start</c> exits with status 0.
/// </summary>
public static class Arm64Sum
{
    /// <summary>The image.</summary>
    public static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        A64Label start = p.Export("_start");
        A64Label sum = p.Export("sum");
        A64Label add = p.Export("add");

        a.Bind(start);
        p.ExitWith(0);

        // sum(x0 = ptr, x1 = len) → x0: byte loads, one at a time (any alignment of ptr).
        a.Bind(sum);
        A64Label loop = a.CreateLabel(), done = a.CreateLabel();
        a.Movz(X(2), 0);                   // total
        a.Bind(loop);
        a.Cbz(X(1), done);
        a.Ldrb(W(3), X(0));
        a.Add(X(2), X(2), X(3));
        a.AddImm(X(0), X(0), 1);
        a.SubImm(X(1), X(1), 1);
        a.B(loop);
        a.Bind(done);
        a.Mov(X(0), X(2));
        a.Ret();

        // add(x0, x1) → x0.
        a.Bind(add);
        a.Add(X(0), X(0), X(1));
        a.Ret();
        return p.Build(start);
    }
}
