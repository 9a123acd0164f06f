// "address:port" as tunnel streams carry it (the CONNECT :authority, the per-request target header).
/** The address and a plain decimal port 1-65535; undefined otherwise ("0x50", "+80", "080" included). */
export function parseHostPort(value: string | undefined): { address: string; port: number } | undefined {
  if (!value) return undefined;
  const i = value.lastIndexOf(":");
  if (i <= 0) return undefined;
  const digits = value.slice(i + 1);
  if (!/^[1-9]\d{0,4}$/.test(digits)) return undefined;
  const port = Number(digits);
  return port > 65535 ? undefined : { address: value.slice(0, i), port };
}
