// How the insights pages write numbers: counts, rates, durations, money and UTC
// times, the same way in a chart's labels and in its tables.

/** An int64 of proto3 JSON ("12", or absent for 0) as a Number. */
export const int = (value) => Number(value || 0);

/** 1234567 as "1,234,567". */
export const count = (value) => int(value).toLocaleString("en-US");

/** "event" for 1, else "events" (`many`: the plural, if not +s). */
export const plural = (value, one, many = `${one}s`) => (int(value) === 1 ? one : many);

/** 1 and "event" as "1 event", 1234 as "1,234 events". */
export const counted = (value, one, many = `${one}s`) => `${count(value)} ${plural(value, one, many)}`;

/** 0.6667 as "66.7%"; a rate above 0 that rounds to 0.0% as "<0.1%" (25 of 166,000
 *  read as none). */
export const percent = (rate) => {
  const value = Number(rate || 0);
  return value > 0 && value < 0.0005 ? "<0.1%" : `${(value * 100).toFixed(1)}%`;
};

/** `percent(rate)` of a number of entrants `of`; "–" when there were none (a rate of
 *  nothing is none: "0.0%" said it was one). */
export const rateOf = (rate, of) => (int(of) ? percent(rate) : "–");

/** The seconds of a proto3 JSON Duration ("7.500s"); null when absent. */
export const seconds = (duration) => (duration ? Number(duration.replace(/s$/, "")) : null);

/** 7.5 as "7.5 s", 60 as "1 min", 3725 as "1 h 2 min", 90000 as "1 d 1 h"; above 0
 *  and under 0.05 "<0.1 s" (a median of 0.049 s read "0 s", as if no time had passed). */
export function duration(total) {
  if (total === null || total === undefined) return "";
  if (total > 0 && total < 0.05) return "<0.1 s";
  if (total < 60) return `${Number(total.toFixed(1))} s`;
  const parts = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const shown = [];
  let rest = Math.round(total);
  for (const [size, unit] of parts) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n || shown.length) shown.push(n ? `${n} ${unit}` : "");
    if (shown.length === 2) break;
  }
  return shown.filter(Boolean).join(" ");
}

/** 20 and "USD" as "20.00 USD": an amount always beside its own currency. */
export const money = (amount, currency) => {
  let digits = 2;  // the currency's own minor unit: "123,456 JPY", not "123,456.00 JPY"
  try {
    digits = new Intl.NumberFormat("en-US", {style: "currency", currency})
      .resolvedOptions().maximumFractionDigits;
  } catch {
    // not an ISO 4217 code: two digits
  }
  return `${Number(amount || 0).toLocaleString("en-US",
    {minimumFractionDigits: digits, maximumFractionDigits: digits})} ${currency}`;
};

/** "2024-03-01" or "2024-03-01 10:00" (UTC) of an RFC 3339 time; `hour` adds the time. */
export function utc(rfc3339, hour) {
  const text = new Date(rfc3339).toISOString();
  return hour ? `${text.slice(0, 10)} ${text.slice(11, 16)}` : text.slice(0, 10);
}

/** A number for an axis: 1500 as "1.5k", 2000000 as "2M". */
export function short(value) {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${Number((value / 1e6).toFixed(1))}M`;
  if (abs >= 1e4) return `${Number((value / 1e3).toFixed(1))}k`;
  return String(Number(value.toFixed(2)));
}

/** A catalog's or a tenant's name as a chooser shows it: its id ("default_catalog"),
 *  with its location when not global, a tenant said so among catalogs, and its project
 *  when `names` (all shown together) hold several. The full name, cut to a chooser's
 *  width, showed "projects/p/locations/glob"; a chooser of tenants alone, labelled
 *  Tenant, read "jobs-site (tenant)". */
export function shortName(name, names = [name]) {
  const parts = name.split("/");
  const tenant = parts[2] === "tenants";
  const id = tenant ? parts[3] : parts[5];
  if (id === undefined) return name;
  const where = !tenant && parts[3] !== "global" ? ` in ${parts[3]}` : "";
  const projects = new Set(names.map((n) => n.split("/")[1]));
  const mixed = names.some((n) => (n.split("/")[2] === "tenants") !== tenant);
  const about = [tenant && mixed ? "tenant" : "", projects.size > 1 ? `project ${parts[1]}` : ""]
    .filter(Boolean).join(", ");
  return `${id}${where}${about ? ` (${about})` : ""}`;
}
