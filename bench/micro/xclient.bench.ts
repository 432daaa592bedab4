/*
 * bench/micro/xclient.bench.ts - buildXclient and SmtpReplyReader.feed (greeting, EHLO reply
 * whole and split in two chunks).
 */
import type { Bench } from 'tinybench';
import { buildXclient } from '../../src/net/xclient.js';
import { SmtpReplyReader } from '../../src/net/smtp-reply.js';

export default function (bench: Bench): void {
  const greeting = Buffer.from('220 backend.example.com ESMTP Postfix\r\n');
  const ehlo = Buffer.from([
    '250-backend.example.com', '250-PIPELINING', '250-SIZE 10240000', '250-ETRN', '250-STARTTLS',
    '250-XCLIENT NAME ADDR PROTO HELO LOGIN DESTADDR DESTPORT', '250-ENHANCEDSTATUSCODES', '250-8BITMIME',
    '250-DSN', '250 CHUNKING', '',
  ].join('\r\n'));
  const half = ehlo.length >> 1;
  const ehloA = ehlo.subarray(0, half);
  const ehloB = ehlo.subarray(half);
  let sink = 0;
  bench.add('buildXclient ipv4', () => {
    sink += buildXclient({ addr: '192.0.2.1', port: 56324, name: 'mail.example.org', helo: 'mail.example.org', proto: 'ESMTP' }).length;
  });
  bench.add('buildXclient ipv6, escaped helo', () => {
    sink += buildXclient({ addr: '2001:db8::42', port: 56324, helo: 'weird helo=x+y', destaddr: '2001:db8::25', destport: 25 }).length;
  });
  bench.add('SmtpReplyReader 220 greeting', () => {
    sink += new SmtpReplyReader().feed(greeting).length;
  });
  bench.add('SmtpReplyReader EHLO 10 lines, one chunk', () => {
    sink += new SmtpReplyReader().feed(ehlo).length;
  });
  bench.add('SmtpReplyReader EHLO 10 lines, two chunks', () => {
    const r = new SmtpReplyReader();
    sink += r.feed(ehloA).length + r.feed(ehloB).length;
  });
  bench.addEventListener('complete', () => { if (sink === 0.5) console.log(sink); });
}
