// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.X86.Emulate;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The x87 softfloat (<see cref="X87Math"/>) against IEEE binary64 where they must agree: with FCW.PC = 53 and
/// round-to-nearest, an add, subtract, multiply, divide or square root of doubles whose result stays in the double
/// normal range rounds exactly as .NET's double does (IEEE 754: one correctly rounded result), then FST m64 returns it
/// unchanged. The inputs are seeded random doubles (this project has no FsCheck reference), 20,000 per operation.
/// </summary>
public sealed class Extended80Tests
{
    private const ushort Pc53Nearest = 0x027f, Pc64Nearest = 0x037f;

    private static double Run(Func<Extended80, Extended80, X87Env, (Extended80, X87Env)> op, double a, double b, out ushort flags)
    {
        var env = new X87Env(Pc53Nearest);
        var x = X87Math.FromBinary((ulong)BitConverter.DoubleToInt64Bits(a), FloatFormat.Double, out _);
        var y = X87Math.FromBinary((ulong)BitConverter.DoubleToInt64Bits(b), FloatFormat.Double, out _);
        var (r, after) = op(x, y, env);
        var store = new X87Env(Pc64Nearest);
        Assert.True(X87Math.Store(r, FloatFormat.Double, ref store, out ulong bits));
        Assert.Equal(0, store.Flags & X87Env.PE); // PC 53 already rounded it to a double
        flags = after.Flags;
        return BitConverter.Int64BitsToDouble((long)bits);
    }

    private static IEnumerable<double> Doubles(Random r, int count)
    {
        for (int k = 0; k < count; k++)
        {
            double m = r.NextDouble() * 2 - 1;
            yield return Math.ScaleB(m, r.Next(-300, 300));
        }
    }

    [Theory]
    [InlineData("add")]
    [InlineData("sub")]
    [InlineData("mul")]
    [InlineData("div")]
    public void Pc53_binary_operations_round_as_binary64_does(string name)
    {
        var rng = new Random(name switch { "add" => 1, "sub" => 2, "mul" => 3, _ => 4 });
        var xs = Doubles(rng, 20000).ToArray();
        var ys = Doubles(rng, 20000).ToArray();
        for (int k = 0; k < xs.Length; k++)
        {
            double a = xs[k], b = ys[k];
            double expected = name switch { "add" => a + b, "sub" => a - b, "mul" => a * b, _ => a / b };
            if (!double.IsNormal(expected) && expected != 0) continue; // the x87 has no double exponent range at PC 53
            double got = Run((x, y, e) => name switch
            {
                "add" => (X87Math.Add(x, y, false, ref e), e),
                "sub" => (X87Math.Add(x, y, true, ref e), e),
                "mul" => (X87Math.Multiply(x, y, ref e), e),
                _ => (X87Math.Divide(x, y, ref e), e),
            }, a, b, out _);
            Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(got), $"{a:R} {name} {b:R}: {got:R}, IEEE {expected:R}");
        }
    }

    [Fact]
    public void Pc53_square_root_rounds_as_binary64_does()
    {
        var rng = new Random(7);
        foreach (double v in Doubles(rng, 20000))
        {
            double a = Math.Abs(v);
            double got = Run((x, _, e) => (X87Math.Sqrt(x, ref e), e), a, 0, out _);
            Assert.Equal(BitConverter.DoubleToInt64Bits(Math.Sqrt(a)), BitConverter.DoubleToInt64Bits(got));
        }
    }

    [Fact]
    public void Inexact_results_set_pe_and_exact_ones_do_not()
    {
        Run((x, y, e) => (X87Math.Divide(x, y, ref e), e), 1.0, 3.0, out ushort third);
        Assert.Equal(X87Env.PE, third & X87Env.PE);
        Run((x, y, e) => (X87Math.Add(x, y, false, ref e), e), 1.5, 2.25, out ushort exact);
        Assert.Equal(0, exact);
    }

    [Fact]
    public void Invalid_operations_give_the_real_indefinite()
    {
        var env = new X87Env(Pc64Nearest);
        var r = X87Math.Add(Extended80.Infinity(false), Extended80.Infinity(true), false, ref env);
        Assert.Equal(Extended80.Indefinite, r);
        Assert.Equal(X87Env.IE, env.Flags);
        env = new X87Env(Pc64Nearest);
        Assert.Equal(Extended80.Indefinite, X87Math.Sqrt(X87Math.FromInteger(-4), ref env));
        Assert.Equal(X87Env.IE, env.Flags);
    }

    [Theory]
    [InlineData(0x037f, 2)] // nearest: 2.5 → 2 (even)
    [InlineData(0x077f, 2)] // down
    [InlineData(0x0b7f, 3)] // up
    [InlineData(0x0f7f, 2)] // toward zero
    public void Fist_rounds_by_rc(ushort fcw, long expected)
    {
        var env = new X87Env(fcw);
        Assert.True(X87Math.ToInteger(new Extended80(0x4000, 0xa000_0000_0000_0000), 32, truncate: false, ref env, out long v));
        Assert.Equal(expected, v);
        Assert.Equal(X87Env.PE, env.Flags);
    }

    [Fact]
    public void Fist_out_of_range_stores_the_integer_indefinite()
    {
        var env = new X87Env(Pc64Nearest);
        Assert.True(X87Math.ToInteger(X87Math.FromInteger(40000), 16, truncate: false, ref env, out long v));
        Assert.Equal(short.MinValue, v);
        Assert.Equal(X87Env.IE, env.Flags);
    }

    [Fact]
    public void Integers_convert_exactly_both_ways()
    {
        foreach (long n in new[] { 0L, 1, -1, long.MaxValue, long.MinValue, 0x123456789abcdef1 })
        {
            var env = new X87Env(Pc64Nearest);
            Assert.True(X87Math.ToInteger(X87Math.FromInteger(n), 64, truncate: false, ref env, out long back));
            Assert.Equal(n, back);
            Assert.Equal(0, env.Flags);
        }
    }
}
