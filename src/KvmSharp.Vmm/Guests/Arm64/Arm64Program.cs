// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Guests.Arm64;

/// <summary>
/// Builds an arm64 demo guest: A64 code (<see cref="A64Assembler"/>) as a flat image at the image base, with named
/// exports, and the ABI's helpers (GUEST-ABI.md, "arm64 micro-VMs").
/// </summary>
public sealed class Arm64Program
{
    private readonly Dictionary<string, A64Label> _exports = new(StringComparer.Ordinal);

    /// <summary>The assembler the program is written with.</summary>
    public A64Assembler Asm { get; } = new();

    /// <summary>A label exported under <paramref name="name"/> (bind it with <see cref="A64Assembler.Bind"/>).</summary>
    public A64Label Export(string name)
    {
        var label = Asm.CreateLabel();
        _exports.Add(name, label);
        return label;
    }

    /// <summary>Stores w<paramref name="status"/>'s value to the exit port: the guest ends with that status (uses x9).</summary>
    public void ExitWith(A64Register status)
    {
        Asm.MovImm(X(9), Layout.Port(Ports.Exit));
        Asm.Str(status.Is64 ? W(status.Number) : status, X(9));
        Hang();
    }

    /// <summary>Exits with <paramref name="status"/> (uses x0, x9).</summary>
    public void ExitWith(int status)
    {
        Asm.MovImm(W(0), (uint)status);
        ExitWith(W(0));
    }

    /// <summary>
    /// Emits <paramref name="bytes"/> (zero-padded to whole words) at the current position and returns its guest
    /// address (the image is loaded at the image base; the assembler has no ADR, so data goes before the code that uses it).
    /// </summary>
    public ulong Data(ReadOnlySpan<byte> bytes)
    {
        ulong address = Arch.X86_64.Layout.ImageBase + (ulong)Asm.Position;
        Span<byte> word = stackalloc byte[4];
        for (int i = 0; i < bytes.Length; i += 4)
        {
            word.Clear();
            bytes[i..Math.Min(bytes.Length, i + 4)].CopyTo(word);
            Asm.Emit(BitConverter.ToUInt32(word));
        }
        return address;
    }

    /// <summary>B . — where the guest waits after a request that ends the call.</summary>
    public void Hang()
    {
        var self = Asm.CreateLabel();
        Asm.Bind(self);
        Asm.B(self);
    }

    /// <summary>The flat image entered at <paramref name="entry"/>, with every export.</summary>
    public GuestImage Build(A64Label entry)
    {
        byte[] code = Asm.Assemble();
        var exports = _exports.ToDictionary(e => e.Key, e => (ulong)Position(e.Value), StringComparer.Ordinal);
        return GuestImage.FromFlat(code, (ulong)Position(entry), exports);
    }

    private int Position(A64Label label) => label.Position >= 0 ? label.Position : throw new InvalidOperationException("unbound export");
}
