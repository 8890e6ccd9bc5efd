#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Embeds share/fimctl.toml into the binary: the built-in default policy is the installed one.
import sys

data = open(sys.argv[1], 'rb').read()
body = ','.join(str(b) for b in data)
with open(sys.argv[2], 'w') as out:
    out.write('// Generated from share/fimctl.toml by src/rules/embed_policy.py. Do not edit.\n')
    out.write('#include "fim/rules.h"\n')
    out.write('namespace fim {\nnamespace {\n')
    out.write('constexpr char kPolicy[] = {%s%s0};\n' % (body, ',' if body else ''))
    out.write('}  // namespace\n')
    out.write('std::string_view builtin_policy_text() { return {kPolicy, sizeof kPolicy - 1}; }\n')
    out.write('}  // namespace fim\n')
