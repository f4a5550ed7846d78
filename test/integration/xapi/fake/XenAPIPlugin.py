# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for XAPI's XenAPIPlugin module in the tests, speaking the host-plugin protocol as XAPI
does: the call arrives as one XML-RPC methodCall in argv[1] (the session reference, then a struct of
string arguments), and the answer is one XML-RPC methodResponse on stdout, {Status: Success, Value} or
{Status: Failure, ErrorDescription: [code, params…]}."""

import sys
import xmlrpc.client

import XenAPI


class Failure(Exception):
    def __init__(self, code, params):
        Exception.__init__(self, code)
        self.params = [code] + list(params)


def _answer(value):
    print(xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False))


def dispatch(fn_table):
    params, method = xmlrpc.client.loads(sys.argv[1])
    session = XenAPI.xapi_local()
    session._session = params[0]
    if method not in fn_table:
        _answer({"Status": "Failure", "ErrorDescription": ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", method]})
        return
    try:
        _answer({"Status": "Success", "Value": fn_table[method](session, params[1])})
    except Failure as exc:
        _answer({"Status": "Failure", "ErrorDescription": exc.params})
    except Exception as exc:
        _answer({"Status": "Failure",
                 "ErrorDescription": ["XENAPI_PLUGIN_FAILURE", method, type(exc).__name__, str(exc)]})
