/*
 * A stand-in for Windows' bcryptprimitives.dll, for running the Windows build under
 * Wine 8.0, which lacks it. Rust's standard library imports ProcessPrng from it; this
 * forwards to RtlGenRandom (advapi32's SystemFunction036), which Wine has. Not shipped:
 * real Windows has the DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
