// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;

namespace KvmSharp;

/// <summary>
/// The "values asked for" text of a <see cref="KvmCall.Check(long, string, ref RequestText)"/>, formatted only when the
/// call failed: an interpolated string handler that the compiler skips entirely for a successful result, so the SDK's
/// hot calls (KVM_SET_MSRS, KVM_SET_XSAVE … on every micro-VM reset) do not build an error message they never use.
/// </summary>
[InterpolatedStringHandler]
internal ref struct RequestText
{
    private DefaultInterpolatedStringHandler _text;
    private readonly bool _failed;

    public RequestText(int literalLength, int formattedCount, long rc, out bool shouldAppend)
    {
        _failed = shouldAppend = KvmCall.IsError(rc);
        _text = _failed ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    public void AppendLiteral(string value) => _text.AppendLiteral(value);

    public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);

    public void AppendFormatted<T>(T value, string? format) => _text.AppendFormatted(value, format);

    public void AppendFormatted<T>(T value, int alignment) => _text.AppendFormatted(value, alignment);

    public void AppendFormatted<T>(T value, int alignment, string? format) => _text.AppendFormatted(value, alignment, format);

    public void AppendFormatted(ReadOnlySpan<char> value) => _text.AppendFormatted(value);

    public void AppendFormatted(string? value) => _text.AppendFormatted(value);

    /// <summary>The text (empty when the call succeeded: nothing was appended).</summary>
    public string ToStringAndClear() => _failed ? _text.ToStringAndClear() : "";
}
