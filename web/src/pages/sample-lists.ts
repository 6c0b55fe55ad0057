// Sample lists to try an export with, built the way the demo's data is (scripts/demo_data.py): the same
// names, companies, LinkedIn profiles written "linkedin.com/in/<Slug>", and the same kinds of awkward rows
// (a duplicate of an earlier person, a malformed e-mail address, a job title longer than Dynamics'
// `jobtitle` column holds, an e-mail address another Dynamics contact has), so a dry run and an export show every outcome. Small on purpose: no API serves
// sample lists, and the bundle stays light. Every identifying value carries the tag "demo".

export type PlatformRecord = Record<string, unknown>;

export interface SampleList {
  id: string;
  label: string;
  entity: "contacts" | "companies";
  records: PlatformRecord[];
}

const TAG = "demo";
const FIRST_NAMES = ["Ana", "Ben", "Chloé", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas"];
const LAST_NAMES = ["Álvarez", "Brown", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hansen"];
const TITLES = ["Head of Sales", "CTO", "VP Marketing", "Account Executive", "Data Engineer", "COO"];
const SENIORITIES = ["Entry", "Senior", "Manager", "Director", "VP", "C-Level", "Owner"];
const INDUSTRIES = ["Software", "Retail", "Logistics", "Banking", "Healthcare"];
const CITIES = ["Madrid", "Berlin", "Lyon", "Oslo", "Porto", "Austin", "Leeds", "Turin"];
const CONTACTS = 10;
const COMPANIES = 5;

export function sampleCompany(index: number): PlatformRecord {
  return {
    id: `co-${String(index).padStart(3, "0")}`,
    name: `Nimbus ${INDUSTRIES[index % INDUSTRIES.length]} ${TAG.toUpperCase()} ${index} Ltd`,
    domain: `nimbus${index}-${TAG}.com`,
    employeeCount: 20 + 15 * index,
    city: CITIES[index % CITIES.length],
  };
}

function slug(index: number): string {
  const first = FIRST_NAMES[index % FIRST_NAMES.length];
  const last = LAST_NAMES[Math.floor(index / FIRST_NAMES.length) % LAST_NAMES.length];
  return `${first}-${last}-${index}-${TAG}`.toLowerCase().replace(/'/g, "");
}

function titleCase(text: string): string {
  return text.replace(/[\p{L}\p{N}]+/gu, (w) => w.charAt(0).toUpperCase() + w.slice(1));
}

/** The sample contact list: new people, then a duplicate row, a bad e-mail and a too-long job title. */
export function sampleContacts(): PlatformRecord[] {
  const out: PlatformRecord[] = [];
  for (let index = 0; index < CONTACTS; index++) {
    const company = sampleCompany(index % COMPANIES);
    out.push({
      id: `ct-${String(index).padStart(3, "0")}`,
      firstName: FIRST_NAMES[index % FIRST_NAMES.length],
      lastName: LAST_NAMES[Math.floor(index / FIRST_NAMES.length) % LAST_NAMES.length],
      jobTitle: TITLES[index % TITLES.length],
      seniority: SENIORITIES[index % SENIORITIES.length],
      professionalEmail: `${slug(index)}@${String(company.domain)}`,
      phoneNumber: `+34 91 555 ${String(index).padStart(4, "0")}`,
      linkedinUrl: `linkedin.com/in/${titleCase(slug(index))}`,
      company,
    });
  }
  out.push({ ...out[4], id: "ct-dup-0", jobTitle: "Duplicate row" });
  out.push({ ...out[6], id: "ct-bad-0", professionalEmail: "not-an-email", linkedinUrl: null });
  out.push({
    ...out[7],
    id: "ct-too-long",
    firstName: "Tom",
    lastName: "Longtitle",
    linkedinUrl: `linkedin.com/in/too-long-title-${TAG}`,
    jobTitle:
      "Senior Vice President of Global Strategic Partnerships, Alliances and Channel Ecosystems (EMEA) & LATAM",
  });
  // A new person whose work e-mail a different Dynamics contact already has (a shared inbox): where the
  // organisation keeps e-mails unique, Dynamics refuses the create with its own code and message.
  out.push({
    ...out[8],
    id: "ct-shared-inbox",
    firstName: "Sales",
    lastName: "Desk",
    linkedinUrl: `linkedin.com/in/sales-desk-${TAG}`,
    professionalEmail: sharedEmail(),
  });
  return out;
}

export function sharedEmail(): string {
  return `sales@nimbus1-${TAG}.com`;
}

export const SAMPLE_LISTS: SampleList[] = [
  { id: "demo-contacts", label: "Demo contacts", entity: "contacts", records: sampleContacts() },
  {
    id: "demo-companies",
    label: "Demo companies",
    entity: "companies",
    records: Array.from({ length: COMPANIES }, (_, i) => sampleCompany(i)),
  },
];
