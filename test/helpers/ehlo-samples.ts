/*
 * test/helpers/ehlo-samples.ts - a Postfix EHLO reply and its keywords, shared by the EHLO tests.
 */
export const POSTFIX_EHLO =
  '250-mail.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n' +
  '250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n' +
  '250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n';

export const POSTFIX_KEYWORDS: ReadonlyMap<string, string> = new Map([
  ['PIPELINING', ''], ['SIZE', '10240000'], ['VRFY', ''], ['ETRN', ''], ['STARTTLS', ''],
  ['XCLIENT', 'NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT'], ['ENHANCEDSTATUSCODES', ''],
  ['8BITMIME', ''], ['DSN', ''], ['SMTPUTF8', ''], ['CHUNKING', ''],
]);
