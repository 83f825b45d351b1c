//! The superbill as a PDF: one US Letter form a patient sends to an insurer
//! to claim for the services it paid for. It draws, in this order, the title,
//! the billing provider, the patient, the statement period, the rendering
//! clinicians, the lettered diagnoses, the services table (with each line's
//! description and, for the drug, its NDC), the payments, the totals, and
//! the attestation with a signature line; every page has a footer with
//! "Page N of M", and a table that runs past a page repeats its header.
//!
//! It is written with `printpdf`'s page operations and only two of the PDF's
//! 14 built-in fonts, Helvetica and Helvetica-Bold: every viewer has them, so
//! no font file is shipped or embedded, the file stays a few kilobytes, and
//! its text is extractable (the insurer's intake may read it by machine).
//! Those fonts are WinAnsi-encoded, so text is first reduced to what that
//! encoding can show (a letter outside it without its accents), and widths
//! come from the fonts' standard metrics (below) so that long text is
//! wrapped or cut short instead of running off the page.

use std::panic::{catch_unwind, AssertUnwindSafe};

use chrono::NaiveDate;
use printpdf::{
    BuiltinFont, Color, Greyscale, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle,
    PdfPage, PdfParseErrorSeverity, PdfSaveOptions, Point, Pt, Rect, TextItem,
};
use unicode_normalization::UnicodeNormalization;

use crate::domain::billing::{dollars, BillLine, BillPayment, PostalAddress, Superbill};
use crate::domain::patient::unaccented;

/// US Letter, in points.
const PAGE_WIDTH: f32 = 612.0;
const PAGE_HEIGHT: f32 = 792.0;
/// Left and right margin.
const MARGIN: f32 = 54.0;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - MARGIN;
/// Where content starts on the first page, measured down from the top.
const TOP: f32 = 50.0;
/// Content may not reach below this (from the top): the footer is under it.
const BOTTOM: f32 = 734.0;

/// Body text size and the height of one line of it.
const BODY: f32 = 9.0;
const LEADING: f32 = 12.0;
/// The size of descriptions, NDCs, table headers and the footer.
const SMALL: f32 = 7.5;
/// Space after each block.
const BLOCK_GAP: f32 = 9.0;
/// A block heading: its text and the rule under it.
const HEADING_HEIGHT: f32 = 16.0;
/// The shaded header row of a table.
const TABLE_HEADER_HEIGHT: f32 = 14.0;
/// The first row of a service line, and each smaller row under it.
const SERVICE_ROW: f32 = 12.0;
const SERVICE_SUB_ROW: f32 = 9.0;
const SERVICE_GAP: f32 = 4.0;

/// The second column of a two-column block, from the left margin.
const SECOND_COLUMN: f32 = 290.0;

/// The services table's columns, from the left margin: left edges for
/// text, right edges for numbers. Payments reuse some so amounts line up.
const COL_DATE: f32 = 0.0;
const COL_POS: f32 = 58.0;
const COL_CODE: f32 = 86.0;
const COL_MODIFIERS: f32 = 212.0;
const COL_UNITS_RIGHT: f32 = 306.0;
const COL_PRICE_RIGHT: f32 = 374.0;
const COL_CHARGE_RIGHT: f32 = 442.0;
const COL_POINTERS: f32 = 458.0;
const COL_METHOD: f32 = 86.0;
const COL_REFERENCE: f32 = 200.0;

/// Grey levels (0 black, 1 white).
const INK: f32 = 0.0;
const MUTED: f32 = 0.35;
const RULE: f32 = 0.55;
const SHADE: f32 = 0.92;

/// The superbill as a PDF (US Letter, Helvetica), text extractable by
/// pdftotext. It is laid out from `bill` alone: the clinicians are the
/// bill's own. An error (only the PDF writer failing) comes back as text,
/// never as a panic.
pub fn render(bill: &Superbill) -> Result<Vec<u8>, String> {
    let mut sheet = Sheet::new(continued_title(bill));
    title(&mut sheet);
    provider(&mut sheet, bill);
    patient(&mut sheet, bill);
    period(&mut sheet, bill);
    clinicians(&mut sheet, bill);
    diagnoses(&mut sheet, bill);
    services(&mut sheet, bill);
    payments(&mut sheet, bill);
    totals(&mut sheet, bill);
    attestation(&mut sheet, bill);
    let pages = sheet.finish(&footer_text(bill));

    let mut doc = PdfDocument::new(&format!("Superbill {} to {}", iso(bill.from), iso(bill.to)));
    let pages = pages.into_iter().map(|ops| PdfPage::new(Mm(215.9), Mm(279.4), ops)).collect();
    doc.with_pages(pages);
    let mut warnings = Vec::new();
    // printpdf indexes internally; a bug there must not take down the worker
    // serving the request, so a panic in it becomes an error like any other.
    let bytes =
        catch_unwind(AssertUnwindSafe(|| doc.save(&PdfSaveOptions::default(), &mut warnings)))
            .map_err(|_| "the PDF writer failed".to_owned())?;
    if let Some(error) = warnings.iter().find(|w| w.severity == PdfParseErrorSeverity::Error) {
        return Err(format!("the PDF writer failed: {}", error.msg));
    }
    if bytes.is_empty() {
        return Err("the PDF writer produced nothing".to_owned());
    }
    Ok(bytes)
}

fn title(sheet: &mut Sheet) {
    sheet.text(MARGIN, TOP + 18.0, Font::Bold, 20.0, INK, "SUPERBILL");
    sheet.text(
        MARGIN,
        TOP + 32.0,
        Font::Regular,
        10.0,
        MUTED,
        "Statement of services for insurance reimbursement",
    );
    sheet.rule(MARGIN, RIGHT, TOP + 40.0, 1.0, INK);
    sheet.y = TOP + 50.0;
}

fn provider(sheet: &mut Sheet, bill: &Superbill) {
    let clinic = &bill.clinic;
    let mut left = vec![(Font::Bold, clinic.legal_name.as_str().to_owned())];
    left.extend(address_lines(&clinic.address).into_iter().map(|line| (Font::Regular, line)));
    left.push((Font::Regular, format!("Phone: {}", clinic.phone.as_str())));
    let right = vec![
        (Font::Regular, format!("Tax ID (EIN): {}", clinic.tax_id.as_str())),
        (Font::Regular, format!("NPI: {}", clinic.npi.as_str())),
        (Font::Regular, format!("Place of service: {}", clinic.place_of_service.as_str())),
    ];
    sheet.two_columns("Billing provider", left, right);
}

fn patient(sheet: &mut Sheet, bill: &Superbill) {
    let patient = &bill.patient;
    let mut left = vec![(Font::Bold, format!("{}, {}", patient.family_name, patient.given_name))];
    if let Some(address) = &patient.address {
        left.extend(address_lines(address).into_iter().map(|line| (Font::Regular, line)));
    }
    let right = vec![
        (Font::Regular, format!("Date of birth: {}", iso(patient.date_of_birth))),
        (Font::Regular, format!("Patient ID: {}", patient.id)),
    ];
    sheet.two_columns("Patient", left, right);
}

fn period(sheet: &mut Sheet, bill: &Superbill) {
    let left =
        vec![(Font::Regular, format!("Dates of service: {} to {}", iso(bill.from), iso(bill.to)))];
    let right = vec![(Font::Regular, format!("Issued: {}", iso(bill.issued_on)))];
    sheet.two_columns("Statement period", left, right);
}

fn clinicians(sheet: &mut Sheet, bill: &Superbill) {
    let heading =
        if bill.clinicians.len() == 1 { "Rendering clinician" } else { "Rendering clinicians" };
    sheet.start_block(heading, LEADING, None);
    if bill.clinicians.is_empty() {
        sheet.row_line(Font::Regular, MUTED, "No rendering clinician on these services.");
    }
    for clinician in &bill.clinicians {
        let name = if clinician.credentials.trim().is_empty() {
            clinician.name.clone()
        } else {
            format!("{}, {}", clinician.name, clinician.credentials)
        };
        sheet.row_line(Font::Regular, INK, &format!("{name} - NPI {}", clinician.npi));
    }
    sheet.end_block();
}

fn diagnoses(sheet: &mut Sheet, bill: &Superbill) {
    sheet.start_block("Diagnoses (ICD-10-CM)", LEADING, None);
    if bill.diagnoses.is_empty() {
        sheet.row_line(Font::Regular, MUTED, "No diagnoses on these services.");
    }
    let (code_x, description_x) = (MARGIN + 16.0, MARGIN + 70.0);
    for diagnosis in &bill.diagnoses {
        let description =
            wrap(&diagnosis.description, Font::Regular, BODY, RIGHT - description_x, 2);
        let height = LEADING * description.len().max(1) as f32;
        sheet.need(height);
        let baseline = sheet.baseline();
        sheet.text(MARGIN, baseline, Font::Bold, BODY, INK, &diagnosis.pointer);
        let code = fit(&diagnosis.code, Font::Regular, BODY, description_x - code_x - 4.0);
        sheet.text(code_x, baseline, Font::Regular, BODY, INK, &code);
        for (i, line) in description.iter().enumerate() {
            let y = baseline + LEADING * i as f32;
            sheet.text(description_x, y, Font::Regular, BODY, INK, line);
        }
        sheet.y += height;
    }
    sheet.end_block();
}

fn services(sheet: &mut Sheet, bill: &Superbill) {
    let Some(first) = bill.lines.first() else {
        sheet.start_block("Services", LEADING, None);
        sheet.row_line(Font::Regular, MUTED, "No services in this period.");
        sheet.end_block();
        return;
    };
    let first_height = TABLE_HEADER_HEIGHT + service_height(first);
    sheet.start_block("Services", first_height, Some(Table::Services));
    sheet.table_header(Table::Services);
    let several_clinicians = bill.clinicians.len() > 1;
    for line in &bill.lines {
        let height = service_height(line);
        sheet.need(height);
        service_row(sheet, bill, line, several_clinicians);
        sheet.y += height;
        sheet.rule(MARGIN, RIGHT, sheet.y - SERVICE_GAP / 2.0, 0.3, SHADE - 0.12);
    }
    sheet.end_block();
}

fn service_height(line: &BillLine) -> f32 {
    SERVICE_ROW + SERVICE_SUB_ROW * if line.drug.is_some() { 2.0 } else { 1.0 } + SERVICE_GAP
}

fn service_row(sheet: &mut Sheet, bill: &Superbill, line: &BillLine, several_clinicians: bool) {
    let baseline = sheet.y + BODY + 1.0;
    let at = |x: f32| MARGIN + x;
    let cell = |sheet: &mut Sheet, x: f32, width: f32, text: &str| {
        let text = fit(text, Font::Regular, BODY, width);
        sheet.text(at(x), baseline, Font::Regular, BODY, INK, &text);
    };
    cell(sheet, COL_DATE, COL_POS - COL_DATE - 4.0, &iso(line.date_of_service));
    cell(sheet, COL_POS, COL_CODE - COL_POS - 4.0, &line.place_of_service);
    let code = fit(line.code.as_str(), Font::Bold, BODY, COL_MODIFIERS - COL_CODE - 4.0);
    sheet.text(at(COL_CODE), baseline, Font::Bold, BODY, INK, &code);
    let modifiers = line.modifiers.join(" ");
    cell(sheet, COL_MODIFIERS, COL_UNITS_RIGHT - 30.0 - COL_MODIFIERS, &modifiers);
    let units = line.units.to_string();
    sheet.number(at(COL_UNITS_RIGHT), baseline, 26.0, &units);
    let price = dollars(line.unit_price_cents.value());
    sheet.number(at(COL_PRICE_RIGHT), baseline, COL_PRICE_RIGHT - COL_UNITS_RIGHT - 6.0, &price);
    let charge = dollars(line.amount_cents);
    sheet.number(at(COL_CHARGE_RIGHT), baseline, COL_CHARGE_RIGHT - COL_PRICE_RIGHT - 6.0, &charge);
    cell(sheet, COL_POINTERS, CONTENT_WIDTH - COL_POINTERS, &line.diagnosis_pointers.join(","));

    // The rows under the code have the width to the right of it to
    // themselves: the other columns are empty there.
    let sub = baseline + SERVICE_SUB_ROW;
    let rendering = bill
        .clinicians
        .iter()
        .find(|c| several_clinicians && c.id == line.rendering_clinician_id)
        .map(|c| format!("Rendering NPI {}", c.npi));
    let rendering_width =
        rendering.as_deref().map_or(0.0, |r| text_width(&sanitize(r), Font::Regular, SMALL) + 14.0);
    let description =
        fit(line.description, Font::Regular, SMALL, RIGHT - at(COL_CODE) - rendering_width);
    sheet.text(at(COL_CODE), sub, Font::Regular, SMALL, MUTED, &description);
    if let Some(rendering) = rendering {
        let x = at(COL_CODE) + text_width(&description, Font::Regular, SMALL) + 14.0;
        sheet.text(x, sub, Font::Regular, SMALL, MUTED, &rendering);
    }
    if let Some(drug) = &line.drug {
        let digits: String = drug.ndc.as_str().chars().filter(char::is_ascii_digit).collect();
        let (unit, quantity) = (drug.unit.as_str(), drug.quantity.as_str());
        let ndc =
            format!("NDC {} {unit} {quantity}    (N4{digits} {unit}{quantity})", drug.ndc.as_str());
        let ndc = fit(&ndc, Font::Regular, SMALL, RIGHT - at(COL_CODE));
        sheet.text(at(COL_CODE), sub + SERVICE_SUB_ROW, Font::Regular, SMALL, INK, &ndc);
    }
}

fn payments(sheet: &mut Sheet, bill: &Superbill) {
    if bill.payments.is_empty() {
        sheet.start_block("Payments", LEADING, None);
        sheet.row_line(Font::Regular, MUTED, "No payments in this period.");
        sheet.end_block();
        return;
    }
    sheet.start_block("Payments", TABLE_HEADER_HEIGHT + LEADING, Some(Table::Payments));
    sheet.table_header(Table::Payments);
    for payment in &bill.payments {
        sheet.need(LEADING);
        payment_row(sheet, payment);
        sheet.y += LEADING;
    }
    sheet.end_block();
}

fn payment_row(sheet: &mut Sheet, payment: &BillPayment) {
    let baseline = sheet.baseline();
    sheet.text(MARGIN + COL_DATE, baseline, Font::Regular, BODY, INK, &iso(payment.received_on));
    let method = capitalized(&payment.method.as_str().replace('_', " "));
    sheet.text(MARGIN + COL_METHOD, baseline, Font::Regular, BODY, INK, &method);
    let reference = payment.reference.as_deref().unwrap_or("");
    let reference = fit(reference, Font::Regular, BODY, COL_CHARGE_RIGHT - 90.0 - COL_REFERENCE);
    sheet.text(MARGIN + COL_REFERENCE, baseline, Font::Regular, BODY, INK, &reference);
    let amount = dollars(payment.amount_cents.value());
    sheet.number(MARGIN + COL_CHARGE_RIGHT, baseline, 80.0, &amount);
}

fn totals(sheet: &mut Sheet, bill: &Superbill) {
    let right = MARGIN + COL_CHARGE_RIGHT;
    sheet.start_block("Totals", LEADING * 3.0 + 4.0, None);
    let row = |sheet: &mut Sheet, font: Font, text: &str| {
        let baseline = sheet.baseline();
        sheet.text_right(right, baseline, font, BODY, INK, text);
        sheet.y += LEADING;
    };
    row(sheet, Font::Regular, &format!("Total charges: {}", dollars(bill.charged_cents)));
    row(sheet, Font::Regular, &format!("Amount paid: {}", dollars(bill.paid_cents)));
    sheet.rule(right - 150.0, right, sheet.y + 1.0, 0.6, INK);
    sheet.y += 4.0;
    row(sheet, Font::Bold, &format!("Balance due: {}", dollars(bill.balance_cents)));
    sheet.end_block();
}

fn attestation(sheet: &mut Sheet, bill: &Superbill) {
    let lines = wrap(bill.attestation, Font::Regular, BODY, CONTENT_WIDTH, 6);
    let signature_height = 40.0;
    sheet.start_block(
        "Provider attestation",
        LEADING * lines.len() as f32 + signature_height,
        None,
    );
    for line in &lines {
        sheet.row_line(Font::Regular, INK, line);
    }
    sheet.y += signature_height - LEADING;
    let baseline = sheet.baseline();
    sheet.text(
        MARGIN,
        baseline,
        Font::Regular,
        BODY,
        INK,
        "Provider signature: ______________________________________   Date: ______________",
    );
    sheet.y += LEADING;
}

/// The address as printed: street lines, then "City, ST ZIP".
fn address_lines(address: &PostalAddress) -> Vec<String> {
    let mut lines = vec![address.line1.as_str().to_owned()];
    if let Some(line2) = &address.line2 {
        lines.push(line2.as_str().to_owned());
    }
    lines.push(format!(
        "{}, {} {}",
        address.city.as_str(),
        address.state.as_str(),
        address.postal_code.as_str()
    ));
    lines
}

/// The header text of pages after the first.
fn continued_title(bill: &Superbill) -> String {
    let patient = &bill.patient;
    format!(
        "{}, {} - date of birth {}",
        patient.family_name,
        patient.given_name,
        iso(patient.date_of_birth)
    )
}

/// The footer's left-hand text, on every page.
fn footer_text(bill: &Superbill) -> String {
    format!(
        "Superbill - {} - {}, {} - {} to {}",
        bill.clinic.legal_name.as_str(),
        bill.patient.family_name,
        bill.patient.given_name,
        iso(bill.from),
        iso(bill.to)
    )
}

fn iso(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// The two fonts the superbill uses.
#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn builtin(self) -> BuiltinFont {
        match self {
            Font::Regular => BuiltinFont::Helvetica,
            Font::Bold => BuiltinFont::HelveticaBold,
        }
    }

    /// The advance width of `c` in thousandths of the font size.
    fn width(self, c: char) -> f32 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        };
        let ascii = usize::try_from(u32::from(c)).ok().and_then(|n| n.checked_sub(32));
        match ascii.and_then(|i| table.get(i)) {
            Some(&width) => f32::from(width),
            // Latin-1 and the other WinAnsi letters are at most as wide as
            // these: overestimating only cuts text a little early.
            None if matches!(c, 'Æ' | 'Œ' | '‰' | '™' | 'æ' | 'œ') => 1000.0,
            None => 778.0,
        }
    }
}

/// Advance widths of ASCII 32 to 126 in Helvetica and Helvetica-Bold, from
/// Adobe's font metrics (the same as the viewers' substitutes for them).
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// `text` reduced to what the built-in fonts' WinAnsi encoding can show:
/// typographic punctuation becomes its ASCII look-alike, white space and
/// control characters a space. A letter outside the encoding is written
/// without its accents (`Ł` `ő` `ễ` `ț` as `L` `o` `e` `t`), so that a name
/// reads as insurers' ASCII forms spell it, not as `?`; what is still
/// outside (another script, a symbol) is `?`. Accents sent apart from their
/// letters (NFD) are put back on them first, where the encoding has the
/// accented letter (`é`), and dropped where it has not.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfc() {
        if shown(c, &mut out) {
            continue;
        }
        let plain = match c {
            // Latin letters Unicode does not decompose.
            'Ł' => "L".to_owned(),
            'ł' => "l".to_owned(),
            'Đ' => "D".to_owned(),
            'đ' => "d".to_owned(),
            'Ħ' => "H".to_owned(),
            'ħ' => "h".to_owned(),
            'ı' => "i".to_owned(),
            _ => unaccented(c.encode_utf8(&mut [0; 4])),
        };
        let written = out.len();
        if !plain.chars().all(|p| shown(p, &mut out)) {
            out.truncate(written);
            out.push('?');
        }
    }
    out
}

/// Writes to `out` how the WinAnsi encoding shows `c`: itself, or its ASCII
/// look-alike (nothing for a soft hyphen); false, writing nothing, when it
/// cannot.
fn shown(c: char, out: &mut String) -> bool {
    match c {
        ' '..='~' => out.push(c),
        '\u{ad}' => {}
        '\u{a0}'..='\u{ff}' => out.push(if c == '\u{a0}' { ' ' } else { c }),
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{2032}' => out.push('\''),
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{2033}' => out.push('"'),
        '\u{2010}'..='\u{2015}' | '\u{2212}' => out.push('-'),
        '\u{2026}' => out.push_str("..."),
        '\u{2022}' => out.push('*'),
        // The WinAnsi letters outside Latin-1, which names may hold.
        'Œ' | 'œ' | 'Š' | 'š' | 'Ž' | 'ž' | 'Ÿ' | '€' => out.push(c),
        _ if c.is_whitespace() || c.is_control() => out.push(' '),
        _ => return false,
    }
    true
}

/// The width of sanitized `text` at `size`, in points.
fn text_width(text: &str, font: Font, size: f32) -> f32 {
    text.chars().map(|c| font.width(c)).sum::<f32>() * size / 1000.0
}

/// `text`, sanitized, cut short with "..." if wider than `width`.
fn fit(text: &str, font: Font, size: f32, width: f32) -> String {
    let text = sanitize(text);
    if text_width(&text, font, size) <= width {
        return text;
    }
    let room = width - text_width("...", font, size);
    let mut used = 0.0;
    let mut out = String::new();
    for c in text.chars() {
        used += font.width(c) * size / 1000.0;
        if used > room {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out.push_str("...");
    out
}

/// `text`, sanitized and wrapped at spaces into lines at most `width` wide
/// (a word wider than a line is broken), at most `max_lines` of them: the
/// last one ends in "..." if text was left out.
fn wrap(text: &str, font: Font, size: f32, width: f32, max_lines: usize) -> Vec<String> {
    let text = sanitize(text);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate =
            if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
        if text_width(&candidate, font, size) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        for c in word.chars() {
            current.push(c);
            if text_width(&current, font, size) > width && current.chars().count() > 1 {
                current.pop();
                lines.push(std::mem::take(&mut current));
                current.push(c);
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines.max(1) {
        let rest = lines.split_off(max_lines.max(1) - 1).join(" ");
        lines.push(fit(&rest, font, size, width));
    }
    lines
}

/// A table whose header a page break inside it repeats.
#[derive(Clone, Copy)]
enum Table {
    Services,
    Payments,
}

/// The pages being drawn: the finished ones, the current one, and where on
/// it the next row goes.
struct Sheet {
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    /// The top of the next row, in points down from the top of the page.
    y: f32,
    /// The header of pages after the first.
    continued: String,
    /// The block being drawn, whose heading a page break repeats.
    block: Option<(&'static str, Option<Table>)>,
}

impl Sheet {
    fn new(continued: String) -> Self {
        Self { pages: Vec::new(), ops: Vec::new(), y: TOP, continued, block: None }
    }

    /// The baseline of body text in the next row.
    fn baseline(&self) -> f32 {
        self.y + BODY
    }

    /// Starts a new page if fewer than `height` points are left on this one,
    /// repeating the heading and header of the block being drawn.
    fn need(&mut self, height: f32) {
        if self.y + height <= BOTTOM {
            return;
        }
        self.pages.push(std::mem::take(&mut self.ops));
        self.y = TOP;
        self.text(MARGIN, TOP + 12.0, Font::Bold, 12.0, INK, "SUPERBILL (continued)");
        let continued = self.continued.clone();
        self.text_right(RIGHT, TOP + 12.0, Font::Regular, BODY, INK, &continued);
        self.rule(MARGIN, RIGHT, TOP + 18.0, 0.8, INK);
        self.y = TOP + 28.0;
        if let Some((heading, table)) = self.block {
            self.heading(&format!("{heading} (continued)"));
            if let Some(table) = table {
                self.table_header(table);
            }
        }
    }

    /// Starts a block: its heading, kept on one page with the first
    /// `first_height` points of what follows it.
    fn start_block(&mut self, heading: &'static str, first_height: f32, table: Option<Table>) {
        self.block = None;
        self.need(HEADING_HEIGHT + first_height);
        self.heading(heading);
        self.block = Some((heading, table));
    }

    fn end_block(&mut self) {
        self.block = None;
        self.y += BLOCK_GAP;
    }

    fn heading(&mut self, heading: &str) {
        let heading = fit(heading, Font::Bold, BODY, CONTENT_WIDTH);
        self.text(MARGIN, self.y + BODY, Font::Bold, BODY, INK, &heading);
        self.rule(MARGIN, RIGHT, self.y + 12.5, 0.5, RULE);
        self.y += HEADING_HEIGHT;
    }

    /// A block of two columns of lines, each wrapped to its column's width
    /// in at most three.
    fn two_columns(
        &mut self,
        heading: &'static str,
        left: Vec<(Font, String)>,
        right: Vec<(Font, String)>,
    ) {
        let split = |column: Vec<(Font, String)>, width: f32| {
            column
                .into_iter()
                .flat_map(|(font, text)| {
                    wrap(&text, font, BODY, width, 3).into_iter().map(move |line| (font, line))
                })
                .collect::<Vec<_>>()
        };
        let left = split(left, SECOND_COLUMN - 10.0);
        let right = split(right, CONTENT_WIDTH - SECOND_COLUMN);
        let rows = left.len().max(right.len());
        self.start_block(heading, LEADING * rows as f32, None);
        for (x, column) in [(MARGIN, left), (MARGIN + SECOND_COLUMN, right)] {
            for (i, (font, line)) in column.into_iter().enumerate() {
                let baseline = self.baseline() + LEADING * i as f32;
                self.text(x, baseline, font, BODY, INK, &line);
            }
        }
        self.y += LEADING * rows as f32;
        self.end_block();
    }

    /// One full-width line of body text, cut short to fit.
    fn row_line(&mut self, font: Font, grey: f32, text: &str) {
        self.need(LEADING);
        let text = fit(text, font, BODY, CONTENT_WIDTH);
        let baseline = self.baseline();
        self.text(MARGIN, baseline, font, BODY, grey, &text);
        self.y += LEADING;
    }

    /// The shaded column headings of a table.
    fn table_header(&mut self, table: Table) {
        let labels: &[(&str, f32, bool)] = match table {
            Table::Services => &[
                ("Date", COL_DATE, false),
                ("POS", COL_POS, false),
                ("Code", COL_CODE, false),
                ("Modifiers", COL_MODIFIERS, false),
                ("Units", COL_UNITS_RIGHT, true),
                ("Unit price", COL_PRICE_RIGHT, true),
                ("Charge", COL_CHARGE_RIGHT, true),
                ("Dx pointer", COL_POINTERS, false),
            ],
            Table::Payments => &[
                ("Date", COL_DATE, false),
                ("Method", COL_METHOD, false),
                ("Reference", COL_REFERENCE, false),
                ("Amount", COL_CHARGE_RIGHT, true),
            ],
        };
        self.ops.push(Op::SetFillColor { col: grey(SHADE) });
        self.ops.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(MARGIN - 3.0),
                y: Pt(PAGE_HEIGHT - self.y - TABLE_HEADER_HEIGHT + 2.0),
                width: Pt(CONTENT_WIDTH + 6.0),
                height: Pt(TABLE_HEADER_HEIGHT - 2.0),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
        let baseline = self.y + 9.0;
        for &(label, x, right_aligned) in labels {
            if right_aligned {
                self.text_right(MARGIN + x, baseline, Font::Bold, SMALL, INK, label);
            } else {
                self.text(MARGIN + x, baseline, Font::Bold, SMALL, INK, label);
            }
        }
        self.y += TABLE_HEADER_HEIGHT + 2.0;
    }

    /// Writes `text` (already fitted, or short) with its baseline `baseline`
    /// points down from the top of the page.
    fn text(&mut self, x: f32, baseline: f32, font: Font, size: f32, grey_level: f32, text: &str) {
        let text = sanitize(text);
        if text.is_empty() {
            return;
        }
        self.ops.extend([
            Op::SetFillColor { col: grey(grey_level) },
            Op::StartTextSection,
            Op::SetFont { font: PdfFontHandle::Builtin(font.builtin()), size: Pt(size) },
            Op::SetTextCursor { pos: Point { x: Pt(x), y: Pt(PAGE_HEIGHT - baseline) } },
            Op::ShowText { items: vec![TextItem::Text(text)] },
            Op::EndTextSection,
        ]);
    }

    /// Text whose right edge is at `right`.
    fn text_right(
        &mut self,
        right: f32,
        baseline: f32,
        font: Font,
        size: f32,
        grey_level: f32,
        text: &str,
    ) {
        let text = sanitize(text);
        let x = right - text_width(&text, font, size);
        self.text(x, baseline, font, size, grey_level, &text);
    }

    /// A number right-aligned at `right`, in body text or, if that is wider
    /// than `width`, smaller: an amount is never cut short.
    fn number(&mut self, right: f32, baseline: f32, width: f32, text: &str) {
        let natural = text_width(&sanitize(text), Font::Regular, BODY);
        let size = if natural > width { (BODY * width / natural).max(4.0) } else { BODY };
        self.text_right(right, baseline, Font::Regular, size, INK, text);
    }

    /// A horizontal rule `y` points down from the top of the page.
    fn rule(&mut self, from: f32, to: f32, y: f32, thickness: f32, grey_level: f32) {
        let at =
            |x: f32| LinePoint { p: Point { x: Pt(x), y: Pt(PAGE_HEIGHT - y) }, bezier: false };
        self.ops.extend([
            Op::SetOutlineColor { col: grey(grey_level) },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine { line: Line { points: vec![at(from), at(to)], is_closed: false } },
        ]);
    }

    /// The pages with their footers: the document's name and "Page N of M".
    fn finish(mut self, footer: &str) -> Vec<Vec<Op>> {
        self.pages.push(std::mem::take(&mut self.ops));
        let count = self.pages.len();
        let footer_y = PAGE_HEIGHT - 36.0;
        let widest = text_width(&format!("Page {count} of {count}"), Font::Regular, SMALL);
        let footer = fit(footer, Font::Regular, SMALL, CONTENT_WIDTH - widest - 24.0);
        let mut pages = Vec::with_capacity(count);
        for (i, ops) in self.pages.into_iter().enumerate() {
            let mut sheet =
                Sheet { pages: Vec::new(), ops, y: 0.0, continued: String::new(), block: None };
            sheet.rule(MARGIN, RIGHT, footer_y - 10.0, 0.5, RULE);
            sheet.text(MARGIN, footer_y, Font::Regular, SMALL, MUTED, &footer);
            sheet.text_right(
                RIGHT,
                footer_y,
                Font::Regular,
                SMALL,
                MUTED,
                &format!("Page {} of {count}", i + 1),
            );
            pages.push(sheet.ops);
        }
        pages
    }
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale { percent: level, icc_profile: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_winansi_and_replaces_the_rest() {
        assert_eq!(sanitize("Ärzte Šimková – O’Brien…"), "Ärzte Šimková - O'Brien...");
        assert_eq!(sanitize("a\u{2212}b\tc\u{a0}d\u{ad}e"), "a-b c de");
        // Letters outside WinAnsi lose their accents; other scripts and
        // symbols are `?`.
        assert_eq!(sanitize("Łódź ✓ 漢"), "Lódz ? ?");
        assert_eq!(sanitize("Nguyễn Thị Ngọc Hà"), "Nguyen Thi Ngoc Hà");
        assert_eq!(sanitize("Ştefănescu Petőfi Dvořák"), "Stefanescu Petofi Dvorák");
        assert_eq!(sanitize("Đorđević Ħal-Luqa ﬁne"), "Dordevic Hal-Luqa fine");
        assert_eq!(sanitize("Ольга"), "?????");
        // Accents sent apart (NFD): on their letter where WinAnsi has it.
        assert_eq!(sanitize("Jose\u{301} Nguye\u{302}\u{303}n"), "José Nguyen");
    }

    #[test]
    fn fit_cuts_long_text_to_the_width() {
        assert_eq!(fit("96365", Font::Regular, BODY, 100.0), "96365");
        let cut = fit(&"Long legal name ".repeat(20), Font::Bold, BODY, 120.0);
        assert!(cut.ends_with("...") && text_width(&cut, Font::Bold, BODY) <= 120.0);
        assert_eq!(fit("anything", Font::Regular, BODY, 0.0), "...");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_marks_what_it_leaves_out() {
        let lines = wrap("one two three four five six", Font::Regular, BODY, 60.0, 9);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| text_width(l, Font::Regular, BODY) <= 60.0));
        assert_eq!(lines.join(" "), "one two three four five six");

        let lines = wrap(&"word ".repeat(100), Font::Regular, BODY, 100.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines.last().is_some_and(|l| l.ends_with("...")));

        let lines = wrap(&"x".repeat(100), Font::Regular, BODY, 50.0, 99);
        assert!(lines.iter().all(|l| !l.is_empty() && text_width(l, Font::Regular, BODY) <= 50.0));
        assert!(wrap("", Font::Regular, BODY, 50.0, 3).is_empty());
    }
}
